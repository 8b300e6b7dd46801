package awslambda

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
)

// requestID is the id of the invocation under way. One execution
// environment runs one invocation at a time, so one value serves every
// logger of the process, those of the parts kept from earlier invocations
// included.
type requestID struct{ v atomic.Value }

func (r *requestID) set(id string) { r.v.Store(id) }

func (r *requestID) get() string {
	s, _ := r.v.Load().(string)
	return s
}

// newLogger returns the function's logger: JSON (or text) lines on w, each
// with the stage and the request id of the invocation under way.
func newLogger(w io.Writer, c Config, id *requestID) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if c.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	log := slog.New(requestHandler{h, id})
	if c.Stage != "" {
		log = log.With("stage", c.Stage)
	}
	return log
}

// requestHandler adds request_id to every record. (A logger with a group
// would put it in the group; tote's loggers have none.)
type requestHandler struct {
	slog.Handler
	id *requestID
}

func (h requestHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := h.id.get(); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestHandler{h.Handler.WithAttrs(attrs), h.id}
}

func (h requestHandler) WithGroup(name string) slog.Handler {
	return requestHandler{h.Handler.WithGroup(name), h.id}
}
