package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/terrifictotes/tote/internal/pgtest"
	"github.com/terrifictotes/tote/pipeline"
)

// tote status puts the runs in a row that found nothing new on one line,
// which counts them; a run that moved data keeps a line of its own.
func TestStatusCountsQuietRuns(t *testing.T) {
	t.Parallel()
	source, wh := seededSource(t), pgtest.NewDB(t)
	env := map[string]string{"TOTE_SOURCE_URL": source, "TOTE_WAREHOUSE_URL": wh, "TOTE_LAKE_URL": "file://" + t.TempDir(),
		"TOTE_LOG_LEVEL": "warn"}
	for i := range 4 {
		if code, _, errOut := runTote(t, env, "run"); code != 0 {
			t.Fatalf("run %d: exit %d: %s", i+1, code, errOut)
		}
	}
	code, out, errOut := runTote(t, env, "status")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	lines := strings.Split(out, "\n")
	var runLines []string
	for _, l := range lines {
		if strings.Contains(l, "manual") {
			runLines = append(runLines, l)
		}
	}
	if len(runLines) != 2 || !strings.Contains(runLines[0], "0 batches, nothing new in 3 runs since ") ||
		!strings.Contains(runLines[0], "(from run 2)") || !strings.Contains(runLines[1], "2 batches") ||
		strings.Contains(runLines[1], "nothing new") {
		t.Errorf("status after a run that loaded and three that found nothing:\n%s", out)
	}
	code, out, errOut = runTote(t, env, "status", "--json")
	var st struct {
		Runs []pipeline.Record `json:"runs"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status --json: exit %d: %s %s", code, out, errOut)
	}
	if len(st.Runs) != 2 || !st.Runs[0].Quiet || st.Runs[0].Coalesced != 3 || st.Runs[0].FirstID != 2 || st.Runs[0].ID != 4 ||
		st.Runs[1].Quiet || st.Runs[1].Coalesced != 1 {
		t.Errorf("status --json: %+v", st.Runs)
	}
}
