package otelsession_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/typedsession/session"
	"github.com/typedsession/session/middleware"
	"github.com/typedsession/session/otelsession"
	"github.com/typedsession/session/store/memstore"
)

// The application registers its providers once, at start-up; zero Options
// use them. Here a ManualReader stands in for a metric exporter.
func Example() {
	reader := sdkmetric.NewManualReader()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	otel.SetTracerProvider(sdktrace.NewTracerProvider( /* sdktrace.WithBatcher(exporter) */ ))

	st := memstore.New(memstore.Options{})
	defer st.Close()
	mgr, err := session.New[cart](st, session.Options{
		Observer: otelsession.New(otelsession.Options{}),
	})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		mgr.Get(r).Count++
	})
	mux.HandleFunc("GET /cart", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, mgr.Get(r).Count)
	})
	// In a server, wrap h in the HTTP instrumentation, such as
	// otelhttp.NewHandler(h, "app"), so that each request has a span for
	// the session's spans to join.
	h := middleware.New(mgr, middleware.Options{})(mux)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "https://example.com/cart", nil))
	r := httptest.NewRequest("GET", "https://example.com/cart", nil)
	r.Header.Set("Cookie", w.Result().Cookies()[0].String())
	h.ServeHTTP(httptest.NewRecorder(), r)

	var rm metricdata.ResourceMetrics
	reader.Collect(context.Background(), &rm)
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "session.operation.duration" {
				continue // its count is the count of each outcome
			}
			for _, p := range m.Data.(metricdata.Histogram[float64]).DataPoints {
				op, _ := p.Attributes.Value("session.operation.name")
				outcome, _ := p.Attributes.Value("session.outcome")
				lines = append(lines, fmt.Sprintf("%s %s: %d", op.AsString(), outcome.AsString(), p.Count))
			}
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// commit created: 1
	// commit unchanged: 1
	// load hit: 1
}
