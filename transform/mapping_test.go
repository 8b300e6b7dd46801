package transform

import "testing"

// Every mapping fits the source and star models.
func TestMappingsFitTheModels(t *testing.T) {
	t.Parallel()
	for _, m := range append(append([]mapping{}, factMappings...), dimMappings...) {
		if _, err := newPlan(m, newOutput(nil, m.target), ""); err != nil {
			t.Errorf("%s → %s: %v", m.source, m.target, err)
		}
	}
}
