package extract

import (
	"encoding/json"
	"errors"
)

func decodeState(raw json.RawMessage, s *State) error {
	if len(raw) == 0 {
		return errors.New("missing")
	}
	if err := json.Unmarshal(raw, s); err != nil {
		return err
	}
	if s.Tables == nil {
		return errors.New("no tables")
	}
	return nil
}
