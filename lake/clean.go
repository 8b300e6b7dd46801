package lake

import (
	"context"
	"fmt"
	"io"
	"path"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Clean deletes the objects of zone that no committed manifest lists and
// that were last modified more than grace ago: the files of batches that
// were never committed (a crash, a lost commit race), and the temporary
// files of every kind that crashed writes leave (fileblob's NAME.HEX.tmp
// beside data files and status objects, the lake's own .NAME.HEX.tmp
// beside manifests); a directory's status objects' are removed whatever
// the zone.
// grace must exceed the time a batch takes from its first file to its
// commit, or Clean may delete the files of a batch that is about to be
// committed. It returns the keys it deleted. A manifest that cannot be
// read stops Clean before it deletes anything.
func (l *Lake) Clean(ctx context.Context, zone Zone, grace time.Duration) (removed []string, err error) {
	if err := zone.check(); err != nil {
		return nil, err
	}
	cutoff := time.Now().Add(-grace)
	// List the candidates before the manifests, so that a batch committed
	// in between is seen as committed.
	var old []string
	prefixes := []string{string(zone) + "/", manifestDir(zone)}
	if zone == Processed {
		prefixes = append(prefixes, string(Rejects)+"/")
	}
	if l.dir != "" {
		// Only a directory has temporary files beside status objects: S3
		// and memory write them whole (and an S3 role need not list them).
		prefixes = append(prefixes, statusDir)
	}
	for _, prefix := range prefixes {
		it := l.bucket.List(&blob.ListOptions{Prefix: prefix})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("lake %s: clean %s: list %s: %w", l.name, zone, prefix, brief(err))
			}
			if obj.IsDir || obj.ModTime.After(cutoff) {
				continue
			}
			if (prefix == manifestDir(zone) || prefix == statusDir) && !isTemp(path.Base(obj.Key)) {
				continue // committed, or advisory and whole
			}
			old = append(old, obj.Key)
		}
	}
	ms, err := l.Batches(ctx, zone)
	if err != nil {
		return nil, fmt.Errorf("lake: clean %s: %w", zone, err)
	}
	listed := make(map[string]bool)
	for _, m := range ms {
		for _, f := range m.Files {
			listed[f.Path] = true
		}
	}
	for _, key := range old {
		if listed[key] {
			continue
		}
		if err := l.bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return removed, fmt.Errorf("lake %s: clean %s: delete %s: %w", l.name, zone, key, brief(err))
		}
		l.logger.Info("deleted unreferenced object", "zone", zone, "key", key)
		removed = append(removed, key)
	}
	return removed, nil
}

// Size returns the number of objects in the lake and their total size.
func (l *Lake) Size(ctx context.Context) (objects int, bytes int64, err error) {
	it := l.bucket.List(nil)
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return objects, bytes, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("lake %s: size: %w", l.name, brief(err))
		}
		if !obj.IsDir {
			objects++
			bytes += obj.Size
		}
	}
}
