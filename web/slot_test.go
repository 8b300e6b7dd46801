package web

import (
	"encoding/json"
	"testing"

	"github.com/terrifictotes/tote/internal/fixture"
	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/replication"
	"github.com/terrifictotes/tote/warehouse"
)

// The pipeline view carries the replication slot's health when tote serve
// watches one, and nothing of it otherwise.
func TestPipelineViewShowsTheSlot(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t, fixture.Warehouse().NewDB(t))
	safe := int64(64 << 20)
	h := &replication.SlotHealth{Slot: "tote", Exists: true, WALStatus: "unreserved", Problem: replication.ProblemUnreserved,
		LagBytes: 3 << 20, RetainedBytes: 5 << 20, SafeWALBytes: &safe}
	for _, c := range []struct {
		name string
		slot func() *replication.SlotHealth
		want *replication.SlotHealth
	}{
		{"xmin", nil, nil},
		{"not read yet", func() *replication.SlotHealth { return nil }, nil},
		{"logical", func() *replication.SlotHealth { return h }, h},
	} {
		srv, err := New(Config{Pool: pool, Warehouse: warehouse.New(pool, nil), Slot: c.slot})
		if err != nil {
			t.Fatal(err)
		}
		w := get(t, srv, "/api/pipeline")
		var v struct {
			Slot *replication.SlotHealth `json:"slot"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &v); w.Code != 200 || err != nil {
			t.Fatalf("%s: %d %v %s", c.name, w.Code, err, w.Body)
		}
		switch {
		case c.want == nil && v.Slot != nil:
			t.Errorf("%s: a slot: %+v", c.name, v.Slot)
		case c.want != nil && (v.Slot == nil || v.Slot.Problem != c.want.Problem || v.Slot.LagBytes != c.want.LagBytes ||
			v.Slot.SafeWALBytes == nil || *v.Slot.SafeWALBytes != safe):
			t.Errorf("%s: slot %+v", c.name, v.Slot)
		}
	}
}
