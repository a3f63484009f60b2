package chiapp_test

import (
	"net/http"
	"testing"

	"github.com/typedsession/session/examples/routers/app"
	"github.com/typedsession/session/examples/routers/chiapp"
	"github.com/typedsession/session/examples/routers/internal/apptest"
)

func TestApp(t *testing.T) {
	apptest.Run(t, func(a *app.App) http.Handler { return chiapp.New(a) })
}
