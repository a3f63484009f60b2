package otelsession_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/typedsession/session"
	"github.com/typedsession/session/otelsession"
	"github.com/typedsession/session/store"
	"github.com/typedsession/session/store/memstore"
)

type cart struct {
	User  string
	Count int
}

// sdk is an observer over the SDK's providers, with what they recorded.
type sdk struct {
	obs    *otelsession.Observer
	tp     *sdktrace.TracerProvider
	spans  *tracetest.SpanRecorder
	reader *sdkmetric.ManualReader
}

func newSDK(t *testing.T) *sdk {
	t.Helper()
	s := &sdk{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(s.reader))
	t.Cleanup(func() {
		s.tp.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	s.obs = otelsession.New(otelsession.Options{TracerProvider: s.tp, MeterProvider: mp})
	return s
}

// request returns a context holding a recording span, as the HTTP
// instrumentation gives a handler.
func (s *sdk) request() (context.Context, trace.Span) {
	return s.tp.Tracer("test").Start(context.Background(), "request")
}

func newManager(t *testing.T, st store.Backend, obs session.Observer) *session.Manager[cart] {
	t.Helper()
	m, err := session.New[cart](st, session.Options{Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newStore(t *testing.T) *memstore.Store {
	st := memstore.New(memstore.Options{SweepInterval: -1})
	t.Cleanup(func() { st.Close() })
	return st
}

// broken is a store whose reads fail.
type broken struct{ *memstore.Store }

func (broken) Load(context.Context, string) ([]byte, bool, error) {
	return nil, false, errors.New("disk on fire")
}

// span is what a test compares of a span.
type span struct {
	Name   string
	Child  bool // of the request's span
	Attrs  map[string]any
	Status codes.Code
	Desc   string
}

// spans returns the session spans rec holds, and the seconds they lasted by
// "operation/outcome".
func spans(t *testing.T, rec *tracetest.SpanRecorder, parent trace.SpanContext) (got []span, took map[string]float64) {
	t.Helper()
	took = map[string]float64{}
	for _, s := range rec.Ended() {
		if s.Name() == "request" {
			continue
		}
		if s.StartTime().After(s.EndTime()) {
			t.Errorf("%s: starts at %v, after its end at %v", s.Name(), s.StartTime(), s.EndTime())
		}
		sp := span{
			Name:   s.Name(),
			Child:  s.Parent().Equal(parent),
			Attrs:  map[string]any{},
			Status: s.Status().Code,
			Desc:   s.Status().Description,
		}
		for _, kv := range s.Attributes() {
			sp.Attrs[string(kv.Key)] = kv.Value.AsInterface()
		}
		got = append(got, sp)
		took[strings.TrimPrefix(sp.Name, "session.")+"/"+fmt.Sprint(sp.Attrs["session.outcome"])] += s.EndTime().Sub(s.StartTime()).Seconds()
	}
	return got, took
}

// points returns, for the histogram name, the count and the sum of its
// points by "operation/outcome".
func points(t *testing.T, reader *sdkmetric.ManualReader, name string) (count map[string]uint64, sum map[string]float64) {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	count, sum = map[string]uint64{}, map[string]float64{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != "github.com/typedsession/session/otelsession" {
			continue
		}
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			if want := units[name]; m.Unit != want {
				t.Errorf("%s: unit %q, want %q", name, m.Unit, want)
			}
			switch h := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range h.DataPoints {
					k := key(p.Attributes)
					count[k] += p.Count
					sum[k] += p.Sum
				}
			case metricdata.Histogram[int64]:
				for _, p := range h.DataPoints {
					k := key(p.Attributes)
					count[k] += p.Count
					sum[k] += float64(p.Sum)
				}
			default:
				t.Fatalf("%s is a %T, want a histogram", name, m.Data)
			}
		}
	}
	return count, sum
}

var units = map[string]string{"session.operation.duration": "s", "session.record.size": "By"}

// key is "operation/outcome", from a point's attributes, which must be
// those two alone.
func key(set attribute.Set) string {
	op, _ := set.Value("session.operation.name")
	oc, _ := set.Value("session.outcome")
	if set.Len() != 2 {
		return "unexpected attributes: " + set.Encoded(attribute.DefaultEncoder())
	}
	return op.AsString() + "/" + oc.AsString()
}

// TestObserver: a new session, a hit, a conflict and a failed load, each a
// span under the request's and a point in the histograms.
func TestObserver(t *testing.T) {
	o := newSDK(t)
	st := newStore(t)
	m := newManager(t, st, o.obs)
	ctx, req := o.request()

	s := m.Begin(ctx, "")
	p, _ := s.Get()
	p.User = "ann"
	res, err := s.Commit(ctx)
	if err != nil || !res.Send {
		t.Fatalf("new session: %+v, %v", res, err)
	}
	tok := res.Token

	s = m.Begin(ctx, tok)
	s.Get()
	s.Commit(ctx)

	// Two requests of one session change one field: the second conflicts.
	a, b := m.Begin(ctx, tok), m.Begin(ctx, tok)
	pa, _ := a.Get()
	pb, _ := b.Get()
	pa.Count++
	pb.Count++
	if _, err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx); !errors.Is(err, session.ErrConflict) {
		t.Fatalf("second commit: %v, want ErrConflict", err)
	}

	f := newManager(t, broken{st}, o.obs).Begin(ctx, tok)
	if _, err := f.Get(); !errors.Is(err, session.ErrStore) {
		t.Fatalf("load from a broken store: %v, want ErrStore", err)
	}
	f.Commit(ctx)
	req.End()

	got, took := spans(t, o.spans, req.SpanContext())
	if len(got) != 8 {
		t.Fatalf("%d spans, want 8: %+v", len(got), got)
	}
	for _, sp := range got {
		for k, v := range sp.Attrs {
			if strings.Contains(fmt.Sprint(v), tok) {
				t.Fatalf("%s: attribute %s holds the token", sp.Name, k)
			}
		}
		if strings.Contains(sp.Desc, tok) {
			t.Fatalf("%s: the status holds the token", sp.Name)
		}
	}
	// The sizes are the sealed records': the same record was written, then
	// read; the one written by the first of the two requests differs.
	created := got[0].Attrs["session.record.size"]
	saved := got[5].Attrs["session.record.size"]
	if n, ok := created.(int64); !ok || n <= 0 {
		t.Fatalf("created record size %v, want > 0", created)
	}
	if n, ok := saved.(int64); !ok || n <= 0 {
		t.Fatalf("saved record size %v, want > 0", saved)
	}
	failure := got[len(got)-1].Desc
	if !strings.Contains(failure, "disk on fire") {
		t.Fatalf("failed load's description %q, want the store's error", failure)
	}
	want := []span{
		{Name: "session.commit", Child: true, Attrs: map[string]any{"session.outcome": "created", "session.record.size": created}},
		{Name: "session.load", Child: true, Attrs: map[string]any{"session.outcome": "hit", "session.record.size": created}},
		{Name: "session.commit", Child: true, Attrs: map[string]any{"session.outcome": "unchanged"}},
		{Name: "session.load", Child: true, Attrs: map[string]any{"session.outcome": "hit", "session.record.size": created}},
		{Name: "session.load", Child: true, Attrs: map[string]any{"session.outcome": "hit", "session.record.size": created}},
		{Name: "session.commit", Child: true, Attrs: map[string]any{"session.outcome": "saved", "session.record.size": saved}},
		{Name: "session.commit", Child: true, Attrs: map[string]any{"session.outcome": "conflict"}},
		{Name: "session.load", Child: true, Attrs: map[string]any{"session.outcome": "failed"}, Status: codes.Error, Desc: failure},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}

	count, sum := points(t, o.reader, "session.operation.duration")
	wantCount := map[string]uint64{
		"commit/created": 1, "load/hit": 3, "commit/unchanged": 1,
		"commit/saved": 1, "commit/conflict": 1, "load/failed": 1,
	}
	if diff := cmp.Diff(wantCount, count); diff != "" {
		t.Errorf("session.operation.duration counts (-want +got):\n%s", diff)
	}
	// A span starts Duration before it ends: it lasts what the histogram
	// records.
	if diff := cmp.Diff(took, sum, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
		t.Errorf("session.operation.duration sums (-span durations +got):\n%s", diff)
	}
	count, sum = points(t, o.reader, "session.record.size")
	c, s2 := float64(created.(int64)), float64(saved.(int64))
	wantCount = map[string]uint64{"commit/created": 1, "load/hit": 3, "commit/saved": 1}
	wantSum := map[string]float64{"commit/created": c, "load/hit": 3 * c, "commit/saved": s2}
	if diff := cmp.Diff(wantCount, count); diff != "" {
		t.Errorf("session.record.size counts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSum, sum); diff != "" {
		t.Errorf("session.record.size sums (-want +got):\n%s", diff)
	}
}

// TestNoRequestSpan: outside a recording span, a load or commit makes no
// span (it would be a trace of its own, tied to no request) but is counted.
func TestNoRequestSpan(t *testing.T) {
	o := newSDK(t)
	m := newManager(t, newStore(t), o.obs)
	ctx := context.Background()
	s := m.Begin(ctx, "")
	p, _ := s.Get()
	p.User = "ann"
	if _, err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(o.spans.Ended()); n != 0 {
		t.Errorf("%d spans, want none", n)
	}
	count, _ := points(t, o.reader, "session.operation.duration")
	if diff := cmp.Diff(map[string]uint64{"commit/created": 1}, count); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// TestEnabled: the observer is on when an instrument is, or when the
// context holds a span that records; the noop providers turn it off.
func TestEnabled(t *testing.T) {
	bg := context.Background()
	o := newSDK(t)
	recording, req := o.request()
	defer req.End()
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer never.Shutdown(bg)
	unsampled, ureq := never.Tracer("test").Start(bg, "request")
	defer ureq.End()
	metrics := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer metrics.Shutdown(bg)
	noTraces, noMetrics := tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider()
	for _, c := range []struct {
		name string
		opts otelsession.Options
		ctx  context.Context
		want bool
	}{
		{"off", otelsession.Options{TracerProvider: noTraces, MeterProvider: noMetrics}, bg, false},
		{"off, in a recording span", otelsession.Options{TracerProvider: noTraces, MeterProvider: noMetrics}, recording, false},
		{"spans, in no span", otelsession.Options{TracerProvider: o.tp, MeterProvider: noMetrics}, bg, false},
		{"spans, in an unsampled span", otelsession.Options{TracerProvider: o.tp, MeterProvider: noMetrics}, unsampled, false},
		{"spans, in a recording span", otelsession.Options{TracerProvider: o.tp, MeterProvider: noMetrics}, recording, true},
		{"metrics", otelsession.Options{TracerProvider: noTraces, MeterProvider: metrics}, bg, true},
	} {
		if got := otelsession.New(c.opts).Enabled(c.ctx); got != c.want {
			t.Errorf("%s: Enabled %v, want %v", c.name, got, c.want)
		}
	}
}

// globalSet records that TestGlobal registered the process's global
// providers, which cannot be unregistered.
var globalSet atomic.Bool

// TestGlobal: zero Options use the global providers, also those registered
// after New. It sets them for the rest of the test binary: the other tests
// give their providers explicitly.
func TestGlobal(t *testing.T) {
	if globalSet.Swap(true) {
		t.Skip("the global providers were registered by an earlier run of this test in this process (-count); there is no way back to none")
	}
	obs := otelsession.New(otelsession.Options{})
	ctx := context.Background()
	if obs.Enabled(ctx) {
		t.Fatal("enabled before any provider was registered")
	}
	rec, reader := tracetest.NewSpanRecorder(), sdkmetric.NewManualReader()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	if !obs.Enabled(ctx) {
		t.Fatal("not enabled after the providers were registered")
	}
	m := newManager(t, newStore(t), obs)
	ctx, req := otel.Tracer("test").Start(ctx, "request")
	s := m.Begin(ctx, "")
	p, _ := s.Get()
	p.User = "ann"
	if _, err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	req.End()
	if got, _ := spans(t, rec, req.SpanContext()); len(got) != 1 || got[0].Name != "session.commit" || !got[0].Child {
		t.Errorf("spans %+v, want one session.commit under the request", got)
	}
	count, _ := points(t, reader, "session.operation.duration")
	if diff := cmp.Diff(map[string]uint64{"commit/created": 1}, count); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// TestExemplar: a point's exemplar links to the session's span, the most
// precise one there is.
func TestExemplar(t *testing.T) {
	o := newSDK(t)
	m := newManager(t, newStore(t), o.obs)
	ctx, req := o.request()
	s := m.Begin(ctx, "")
	p, _ := s.Get()
	p.User = "ann"
	if _, err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	req.End()
	var commit trace.SpanID
	for _, s := range o.spans.Ended() {
		if s.Name() == "session.commit" {
			commit = s.SpanContext().SpanID()
		}
	}
	var rm metricdata.ResourceMetrics
	if err := o.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			var ex [][]byte
			switch h := m.Data.(type) {
			case metricdata.Histogram[float64]:
				for _, p := range h.DataPoints {
					for _, e := range p.Exemplars {
						ex = append(ex, e.SpanID)
					}
				}
			case metricdata.Histogram[int64]:
				for _, p := range h.DataPoints {
					for _, e := range p.Exemplars {
						ex = append(ex, e.SpanID)
					}
				}
			}
			for _, id := range ex {
				if string(id) != string(commit[:]) {
					t.Errorf("%s: an exemplar links to span %x, want the commit's %s", m.Name, id, commit)
				}
			}
			got = append(got, fmt.Sprintf("%s: %d", m.Name, len(ex)))
		}
	}
	want := []string{"session.operation.duration: 1", "session.record.size: 1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("exemplars (-want +got):\n%s", diff)
	}
}

// TestNewOutcome: an outcome a later version of the manager reports, which
// this package has no prepared attributes for, is recorded as it comes.
func TestNewOutcome(t *testing.T) {
	o := newSDK(t)
	ctx, req := o.request()
	e := session.Event{Commit: true, Outcome: "postponed"}
	if !o.obs.Enabled(ctx) {
		t.Fatal("not enabled")
	}
	o.obs.Observe(ctx, e)
	req.End()
	got, _ := spans(t, o.spans, req.SpanContext())
	want := []span{{Name: "session.commit", Child: true, Attrs: map[string]any{"session.outcome": "postponed"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}
	count, _ := points(t, o.reader, "session.operation.duration")
	if diff := cmp.Diff(map[string]uint64{"commit/postponed": 1}, count); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// TestLate: a change made after the response started that could not be
// saved (a new visitor's, still empty when the response started: it would
// have needed a cookie) is an error.
func TestLate(t *testing.T) {
	o := newSDK(t)
	m := newManager(t, newStore(t), o.obs)
	ctx, req := o.request()
	s := m.Begin(ctx, "")
	p, _ := s.Get()
	if _, err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	p.Count++
	_, err := s.Commit(ctx)
	if !errors.Is(err, session.ErrLate) {
		t.Fatalf("second commit: %v, want ErrLate", err)
	}
	req.End()
	got, _ := spans(t, o.spans, req.SpanContext())
	want := []span{
		{Name: "session.commit", Child: true, Attrs: map[string]any{"session.outcome": "unchanged"}},
		{Name: "session.commit", Child: true, Attrs: map[string]any{"session.outcome": "late"}, Status: codes.Error, Desc: err.Error()},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}
	count, _ := points(t, o.reader, "session.operation.duration")
	if diff := cmp.Diff(map[string]uint64{"commit/unchanged": 1, "commit/late": 1}, count); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}
