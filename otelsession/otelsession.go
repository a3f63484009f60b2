package otelsession

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/typedsession/session"
)

// scope is the instrumentation scope the tracer and the meter are named
// for: this package's import path, as the OpenTelemetry conventions ask.
const scope = "github.com/typedsession/session/otelsession"

// Names of the attributes.
const (
	operationKey = attribute.Key("session.operation.name")
	outcomeKey   = attribute.Key("session.outcome")
	sizeKey      = attribute.Key("session.record.size")
	mergesKey    = attribute.Key("session.merges")
)

// Bucket boundaries: a load or commit takes microseconds from memory and
// milliseconds from a database; a record is a few hundred bytes up to a
// cookie's 4 kB, more in a server-side store.
var (
	durationBounds = []float64{
		0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
		0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
	}
	sizeBounds = []float64{64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536}
)

// Options configures an [Observer]. The zero value uses the global
// providers.
type Options struct {
	// TracerProvider makes the spans. Nil means otel.GetTracerProvider(),
	// looked up once, in New (the global provider passes spans on to a
	// provider registered later). A noop.TracerProvider turns spans off.
	TracerProvider trace.TracerProvider

	// MeterProvider makes the histograms. Nil means otel.GetMeterProvider(),
	// looked up once, in New (the global provider passes measurements on
	// to a provider registered later). A noop.MeterProvider turns metrics
	// off.
	MeterProvider metric.MeterProvider
}

// Observer is a session.Observer that reports each load and commit to
// OpenTelemetry (see the package documentation). It is safe for
// concurrent use.
type Observer struct {
	tracer   trace.Tracer // nil when spans are off
	duration metric.Float64Histogram
	size     metric.Int64Histogram
	load     map[session.Outcome]*outcome
	commit   map[session.Outcome]*outcome
}

var _ session.Observer = (*Observer)(nil)

// outcome holds what is the same for every event of one operation and
// outcome, built once so that recording one allocates nothing.
type outcome struct {
	attr attribute.KeyValue    // session.outcome, for the span
	opts []metric.RecordOption // the metric attributes, as a prepared set
}

func newOutcome(op string, o session.Outcome) *outcome {
	attr := outcomeKey.String(string(o))
	set := attribute.NewSet(operationKey.String(op), attr)
	return &outcome{attr: attr, opts: []metric.RecordOption{metric.WithAttributeSet(set)}}
}

// New returns an Observer that makes spans with opts.TracerProvider and
// records metrics with opts.MeterProvider. An error the MeterProvider
// returns for an instrument goes to otel.Handle, as OpenTelemetry's own
// errors do.
func New(opts Options) *Observer {
	tp, mp := opts.TracerProvider, opts.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	o := &Observer{load: map[session.Outcome]*outcome{}, commit: map[session.Outcome]*outcome{}}
	// Starting a span with the noop provider still wraps the context; not
	// asking it at all is cheaper.
	if _, off := tp.(tracenoop.TracerProvider); !off {
		o.tracer = tp.Tracer(scope)
	}
	meter := mp.Meter(scope)
	var err error
	o.duration, err = meter.Float64Histogram("session.operation.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of session loads and commits, store calls included."),
		metric.WithExplicitBucketBoundaries(durationBounds...))
	if err != nil {
		otel.Handle(err)
	}
	o.size, err = meter.Int64Histogram("session.record.size",
		metric.WithUnit("By"),
		metric.WithDescription("Size of the session records read and written, sealed as the store keeps them."),
		metric.WithExplicitBucketBoundaries(sizeBounds...))
	if err != nil {
		otel.Handle(err)
	}
	for _, oc := range []session.Outcome{session.Hit, session.Miss, session.Expired, session.Unreadable,
		session.Undecodable, session.Revoked, session.Retired, session.Failed} {
		o.load[oc] = newOutcome("load", oc)
	}
	for _, oc := range []session.Outcome{session.Unchanged, session.Created, session.Saved, session.Refreshed,
		session.Merged, session.Rotated, session.Deleted, session.Conflict, session.Failed, session.Late} {
		o.commit[oc] = newOutcome("commit", oc)
	}
	return o
}

// Enabled reports whether an event in ctx would be recorded: whether
// either histogram is enabled or ctx holds a recording span.
func (o *Observer) Enabled(ctx context.Context) bool {
	return (o.duration != nil && o.duration.Enabled(ctx)) ||
		(o.size != nil && o.size.Enabled(ctx)) ||
		(o.tracer != nil && trace.SpanFromContext(ctx).IsRecording())
}

// Observe records e: a span, as a child of the recording span in ctx if
// there is one, and a point in each histogram, whose exemplars (if the
// MeterProvider keeps them) link to that span.
func (o *Observer) Observe(ctx context.Context, e session.Event) {
	end := time.Now()
	op, name, byOutcome := "load", "session.load", o.load
	if e.Commit {
		op, name, byOutcome = "commit", "session.commit", o.commit
	}
	oc := byOutcome[e.Outcome]
	if oc == nil {
		oc = newOutcome(op, e.Outcome) // one this package does not know yet
	}
	if o.tracer != nil && trace.SpanFromContext(ctx).IsRecording() {
		// The points' exemplars then link to the session's span, not the
		// request's; and the SDK finds it in one step, where a lookup in
		// the commit's context (context.WithoutCancel) allocates.
		ctx = o.span(ctx, name, e, oc, end)
	}
	if o.duration != nil {
		o.duration.Record(ctx, e.Duration.Seconds(), oc.opts...)
	}
	if o.size != nil && e.Size > 0 {
		o.size.Record(ctx, int64(e.Size), oc.opts...)
	}
}

// span records e, which ended at end, as a span named name, and returns ctx
// with that span.
func (o *Observer) span(ctx context.Context, name string, e session.Event, oc *outcome, end time.Time) context.Context {
	attrs := make([]attribute.KeyValue, 1, 3)
	attrs[0] = oc.attr
	if e.Size > 0 {
		attrs = append(attrs, sizeKey.Int(e.Size))
	}
	if e.Merges > 0 {
		attrs = append(attrs, mergesKey.Int(e.Merges))
	}
	ctx, span := o.tracer.Start(ctx, name,
		trace.WithTimestamp(end.Add(-e.Duration)),
		trace.WithAttributes(attrs...))
	// A change lost is an error of the server: the store failed, or the
	// handler changed the session too late to save it. A conflict is not:
	// the client was answered 409 and nothing was lost unknown to it.
	if e.Outcome == session.Failed || e.Outcome == session.Late {
		desc := string(e.Outcome)
		if e.Err != nil {
			desc = e.Err.Error()
		}
		span.SetStatus(codes.Error, desc)
	}
	span.End(trace.WithTimestamp(end))
	return ctx
}
