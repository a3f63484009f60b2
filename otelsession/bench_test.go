package otelsession_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/otelsession"
	"github.com/typedsession/session/store/memstore"
)

// benchSDK returns the SDK's providers as a service would run them: spans
// batched to an exporter (one that drops them), metrics read periodically
// (a reader that is never asked).
func benchSDK(b *testing.B) (*sdktrace.TracerProvider, *sdkmetric.MeterProvider) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		tp.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	return tp, mp
}

// BenchmarkObserve is what one event costs, asked as the manager asks:
// Enabled, then Observe if it said yes.
func BenchmarkObserve(b *testing.B) {
	tp, mp := benchSDK(b)
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer never.Shutdown(context.Background())
	bg := context.Background()
	traced, req := tp.Tracer("bench").Start(bg, "request")
	defer req.End()
	unsampled, ureq := never.Tracer("bench").Start(bg, "request")
	defer ureq.End()
	noop := otelsession.Options{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}
	sdk := otelsession.Options{TracerProvider: tp, MeterProvider: mp}
	spansOnly := otelsession.Options{TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider()}
	e := session.Event{Outcome: session.Hit, Duration: 5 * time.Microsecond, Size: 300}
	for _, c := range []struct {
		name string
		opts otelsession.Options
		ctx  context.Context
	}{
		{"noop", noop, bg},
		{"noop/traced", noop, traced},
		{"spans/untraced", spansOnly, bg},
		{"spans/unsampled", spansOnly, unsampled},
		{"sdk/untraced", sdk, bg},
		{"sdk/traced", sdk, traced},
	} {
		b.Run(c.name, func(b *testing.B) {
			o := otelsession.New(c.opts)
			b.ReportAllocs()
			for b.Loop() {
				if o.Enabled(c.ctx) {
					o.Observe(c.ctx, e)
				}
			}
		})
	}
}

// benchWriter is a ResponseWriter that costs nothing.
type benchWriter struct{ h http.Header }

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *benchWriter) WriteHeader(int)             {}

type benchSess struct {
	UserID   int64
	Name     string
	Roles    []string
	CSRF     string
	Cart     []int64
	LastSeen int64
}

// BenchmarkRequest is a request through the middleware to a Manager over
// memstore that reads (a load and an unchanged commit) or modifies (a load
// and a save) the session, with the default observer (slog, off below debug
// level) and with this package's over the noop providers and over the SDK;
// untraced, or inside a request span as the HTTP instrumentation starts
// (which the traced baseline pays too).
func BenchmarkRequest(b *testing.B) {
	tp, mp := benchSDK(b)
	for _, obs := range []struct {
		name string
		obs  func() session.Observer
	}{
		{"default", func() session.Observer { return nil }},
		{"noop", func() session.Observer {
			return otelsession.New(otelsession.Options{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()})
		}},
		{"sdk", func() session.Observer {
			return otelsession.New(otelsession.Options{TracerProvider: tp, MeterProvider: mp})
		}},
	} {
		for _, traced := range []bool{false, true} {
			for _, op := range []string{"read", "modify"} {
				name := "op=" + op + "/traced=no/observer=" + obs.name
				if traced {
					name = "op=" + op + "/traced=yes/observer=" + obs.name
				}
				b.Run(name, func(b *testing.B) {
					st := memstore.New(memstore.Options{SweepInterval: -1})
					defer st.Close()
					m, err := session.New[benchSess](st, session.Options{Observer: obs.obs()})
					if err != nil {
						b.Fatal(err)
					}
					var h http.Handler = middleware.New(m, middleware.Options{})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						p := m.Get(r)
						if p.UserID == 0 {
							*p = benchSess{UserID: 4211, Name: "Ada Lovelace", Roles: []string{"admin", "editor"},
								CSRF: "k3J9f0aQz8LrT2vX5mN1pB7cY4wE6hGd", Cart: []int64{101, 202, 303, 404, 505}}
						}
						if op == "modify" {
							p.LastSeen++
						}
						w.WriteHeader(http.StatusOK)
					}))
					if traced {
						h = spanned(tp.Tracer("bench"), h)
					}
					benchRequest(b, h)
				})
			}
		}
	}
}

// spanned wraps h in a span per request, as otelhttp does.
func spanned(tracer trace.Tracer, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tracer.Start(r.Context(), "GET /")
		defer span.End()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

// benchRequest runs one request that creates the session, then measures
// requests that carry its cookie.
func benchRequest(b *testing.B, h http.Handler) {
	w := &benchWriter{h: make(http.Header)}
	r, _ := http.NewRequest("GET", "https://example.com/", nil)
	h.ServeHTTP(w, r)
	name, rest, _ := strings.Cut(w.h.Get("Set-Cookie"), "=")
	value, _, _ := strings.Cut(rest, ";")
	if value == "" {
		b.Fatal("the first request set no cookie")
	}
	r.Header.Set("Cookie", name+"="+value)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, r)
	}
}
