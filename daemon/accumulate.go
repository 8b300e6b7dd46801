package daemon

import (
	"slices"

	"github.com/terrifictotes/tote/pipeline"
	"github.com/terrifictotes/tote/warehouse"
)

// accumulator sums what the attempts of a run did, stage by stage.
type accumulator struct {
	byStage map[string]*warehouse.RunStage
	batches []string
}

func newAccumulator() *accumulator {
	return &accumulator{byStage: map[string]*warehouse.RunStage{}}
}

func (a *accumulator) stage(name string) *warehouse.RunStage {
	s, ok := a.byStage[name]
	if !ok {
		s = &warehouse.RunStage{Stage: name, Tables: map[string]int64{}}
		a.byStage[name] = s
	}
	return s
}

func (a *accumulator) add(res pipeline.Result) {
	for _, sr := range res.Stages {
		s := a.stage(sr.Stage)
		s.Rows += sr.Rows
		s.Elapsed += sr.Elapsed
		s.Error = "" // a later attempt got through
		for _, b := range sr.Batches {
			if !slices.Contains(a.batches, b) {
				a.batches = append(a.batches, b)
			}
		}
	}
	if res.Extract != nil {
		for _, t := range res.Extract.Tables {
			a.stage(pipeline.Extract).Tables[t.Table] += t.Rows
		}
	}
	if res.Transform != nil {
		for _, b := range res.Transform.Batches {
			for _, t := range b.Tables {
				a.stage(pipeline.Transform).Tables[t.Table] += t.Rows
			}
		}
	}
	if res.Load != nil {
		for _, b := range res.Load.Batches {
			for _, t := range b.Tables {
				a.stage(pipeline.Load).Tables[t.Table] += t.Rows
			}
		}
	}
}

func (a *accumulator) fail(stage string, err error) {
	a.stage(stage).Error = err.Error()
}

// stages returns the stages in pipeline order.
func (a *accumulator) stages() []warehouse.RunStage {
	out := []warehouse.RunStage{}
	for _, name := range []string{pipeline.Extract, pipeline.Transform, pipeline.Load} {
		if s, ok := a.byStage[name]; ok {
			out = append(out, *s)
		}
	}
	return out
}
