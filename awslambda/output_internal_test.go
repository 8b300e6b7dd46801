package awslambda

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestOutputCap: however many batches and rejects a stage had, its output
// stays far below Step Functions' 256 KiB, and says what it left out.
func TestOutputCap(t *testing.T) {
	t.Parallel()
	o := Output{Stage: "transform"}
	value := strconv.Quote(strings.Repeat("é", 2000)) // quoted once: 10,000 times is seconds under -race
	for i := range 10_000 {
		o.Batches = append(o.Batches, fmt.Sprintf("%012d-20261202T101500.000Z", i+1))
		o.Quarantined = append(o.Quarantined, "sales_order "+strconv.Itoa(i)+": agreed_delivery_date "+value+" is not a date")
	}
	o.cap()
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 64<<10 {
		t.Errorf("the output is %d bytes", len(b))
	}
	if len(o.Batches) != maxBatches || o.BatchesOmitted != 10_000-maxBatches || o.Batches[maxBatches-1] != "000000010000-20261202T101500.000Z" {
		t.Errorf("batches: %d kept (last %s), %d omitted; want the newest %d and the count of the rest",
			len(o.Batches), o.Batches[len(o.Batches)-1], o.BatchesOmitted, maxBatches)
	}
	if len(o.Quarantined) != maxQuarantined || o.QuarantinedOmitted != 10_000-maxQuarantined {
		t.Errorf("quarantined: %d kept, %d omitted", len(o.Quarantined), o.QuarantinedOmitted)
	}
	for _, q := range o.Quarantined {
		if len(q) > maxEntry || !utf8.ValidString(q) || !strings.HasSuffix(q, "…") {
			t.Errorf("entry of %d bytes (valid UTF-8 %v): %.60s…", len(q), utf8.ValidString(q), q)
			break
		}
	}
	var empty Output
	empty.cap()
	if b, _ := json.Marshal(empty); !strings.Contains(string(b), `"batches":[]`) || !strings.Contains(string(b), `"rows":{}`) {
		t.Errorf("an empty output marshals as %s; want empty lists, not null", b)
	}
}
