package ginapp_test

import (
	"net/http"
	"os"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/typedsession/session/examples/routers/app"
	"github.com/typedsession/session/examples/routers/ginapp"
	"github.com/typedsession/session/examples/routers/internal/apptest"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // no route listing on stdout
	os.Exit(m.Run())
}

func TestApp(t *testing.T) {
	apptest.Run(t, func(a *app.App) http.Handler { return ginapp.New(a) })
}
