package stdapp_test

import (
	"net/http"
	"testing"

	"github.com/typedsession/session/examples/routers/app"
	"github.com/typedsession/session/examples/routers/internal/apptest"
	"github.com/typedsession/session/examples/routers/stdapp"
)

func TestApp(t *testing.T) {
	apptest.Run(t, func(a *app.App) http.Handler { return stdapp.New(a) })
}
