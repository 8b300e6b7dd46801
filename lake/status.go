package lake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Status objects are small JSON documents under status/ that stages
// overwrite to say where they stand, such as the time of the last
// extraction that found nothing new. Unlike batches they are not the
// record: they are advisory, last writer wins, and a lake without them is
// whole. Readers must treat a missing one as "not known".

// statusDir holds the status objects.
const statusDir = "status/"

// statusKey is the key of status object name.
func statusKey(name string) string { return statusDir + name + ".json" }

// PutStatus writes status object name as the JSON of v, replacing it.
func (l *Lake) PutStatus(ctx context.Context, name string, v any) error {
	if !validTable(name) {
		return fmt.Errorf("lake: invalid status name %q", name)
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("lake: status %s: encode: %w", name, err)
	}
	fail := func(err error) error { return fmt.Errorf("lake %s: write status %s: %w", l.name, name, brief(err)) }
	// In a directory the new content goes to a temporary file, renamed
	// over the old one by Close: a crash in between leaves the temporary
	// file, which Clean removes.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := l.bucket.NewWriter(wctx, statusKey(name), &blob.WriterOptions{ContentType: "application/json"})
	if err != nil {
		return fail(err)
	}
	if _, err := w.Write(append(data, '\n')); err != nil {
		cancel() // abandons the write
		_ = w.Close()
		return fail(err)
	}
	if l.BeforeStatusReplace != nil {
		l.BeforeStatusReplace(name)
	}
	if err := w.Close(); err != nil {
		return fail(err)
	}
	return nil
}

// Status reads status object name into v. It reports false, and leaves v
// alone, if there is none.
func (l *Lake) Status(ctx context.Context, name string, v any) (bool, error) {
	r, err := l.bucket.NewReader(ctx, statusKey(name), nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lake %s: read status %s: %w", l.name, name, brief(err))
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return false, fmt.Errorf("lake %s: read status %s: %w", l.name, name, brief(err))
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, corruptf("lake %s: status %s: not valid JSON: %v", l.name, name, err)
	}
	return true, nil
}
