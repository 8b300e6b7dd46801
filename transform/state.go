package transform

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/terrifictotes/tote"
	"github.com/terrifictotes/tote/lake"
)

// State is what a transform records in each processed manifest for the
// next one: which raw batch it consumed, and the current rows of the
// source tables that dimensions join, after that batch.
type State struct {
	RawBatch string `json:"raw_batch"` // id of the raw batch this processed batch was made from
	RawSeq   uint64 `json:"raw_seq"`   // its number: the next run starts after it

	// The current version of every row of address, department, staff and
	// counterparty seen so far, by id, with the columns dimensions use.
	Addresses      []Address      `json:"address"`
	Departments    []Department   `json:"department"`
	Staff          []Staff        `json:"staff"`
	Counterparties []Counterparty `json:"counterparty"`

	// OpenRejects are the source rows rejected (quarantined) so far whose
	// later versions have not yet transformed.
	OpenRejects []rowKey `json:"open_rejects,omitempty"`
}

// Address is an address row as State keeps it: dim_location's columns and
// a counterparty's legal address.
type Address struct {
	ID           int32     `json:"address_id"`
	AddressLine1 string    `json:"address_line_1"`
	AddressLine2 *string   `json:"address_line_2"`
	District     *string   `json:"district"`
	City         string    `json:"city"`
	PostalCode   string    `json:"postal_code"`
	Country      string    `json:"country"`
	Phone        string    `json:"phone"`
	LastUpdated  time.Time `json:"last_updated"` // source wall-clock time, written as UTC
}

// Department is a department row as State keeps it, for dim_staff.
type Department struct {
	ID          int32     `json:"department_id"`
	Name        string    `json:"department_name"`
	Location    *string   `json:"location"`
	LastUpdated time.Time `json:"last_updated"`
}

// Staff is a staff row as State keeps it, for dim_staff.
type Staff struct {
	ID           int32     `json:"staff_id"`
	FirstName    string    `json:"first_name"`
	LastName     string    `json:"last_name"`
	DepartmentID int32     `json:"department_id"`
	EmailAddress string    `json:"email_address"`
	LastUpdated  time.Time `json:"last_updated"`
}

// Counterparty is a counterparty row as State keeps it, for dim_counterparty.
type Counterparty struct {
	ID             int32     `json:"counterparty_id"`
	LegalName      string    `json:"counterparty_legal_name"`
	LegalAddressID int32     `json:"legal_address_id"`
	LastUpdated    time.Time `json:"last_updated"`
}

// LoadState decodes the transform state recorded in a processed manifest.
func LoadState(m lake.Manifest) (State, error) {
	var s State
	if len(m.State) == 0 {
		return State{}, fmt.Errorf("processed batch %s: transform state: missing", m.ID)
	}
	if err := json.Unmarshal(m.State, &s); err != nil {
		return State{}, fmt.Errorf("processed batch %s: transform state: %w", m.ID, err)
	}
	if s.RawSeq == 0 {
		return State{}, fmt.Errorf("processed batch %s: transform state: %w", m.ID, errors.New("no raw batch number"))
	}
	return s, nil
}

// reference is the working copy of a State's rows, by id, with what the
// current raw batch changed.
type reference struct {
	addresses      map[int32]Address
	departments    map[int32]Department
	staff          map[int32]Staff
	counterparties map[int32]Counterparty

	changedAddresses      map[int32]bool
	changedDepartments    map[int32]bool
	changedStaff          map[int32]bool
	changedCounterparties map[int32]bool
}

func newReference(s State) *reference {
	r := &reference{
		addresses:             byID(s.Addresses, func(a Address) int32 { return a.ID }),
		departments:           byID(s.Departments, func(d Department) int32 { return d.ID }),
		staff:                 byID(s.Staff, func(s Staff) int32 { return s.ID }),
		counterparties:        byID(s.Counterparties, func(c Counterparty) int32 { return c.ID }),
		changedAddresses:      map[int32]bool{},
		changedDepartments:    map[int32]bool{},
		changedStaff:          map[int32]bool{},
		changedCounterparties: map[int32]bool{},
	}
	return r
}

func byID[T any](rows []T, id func(T) int32) map[int32]T {
	m := make(map[int32]T, len(rows))
	for _, r := range rows {
		m[id(r)] = r
	}
	return m
}

// apply records row, of the batch being transformed, as the current
// version of id, and marks id changed. A later batch's version always
// wins, whatever its stamp: batches are in the order versions became
// visible in the source. Within one batch, which extraction never gives two
// versions of a row, the newer stamp wins.
func apply[T any](rows map[int32]T, changed map[int32]bool, id int32, row T, lastUpdated func(T) int64) {
	if old, ok := rows[id]; ok && changed[id] && lastUpdated(old) > lastUpdated(row) {
		return
	}
	rows[id] = row
	changed[id] = true
}

// state returns the State after raw batch m.
func (r *reference) state(m lake.Manifest) State {
	return State{
		RawBatch:       m.ID,
		RawSeq:         m.Seq,
		Addresses:      sortedValues(r.addresses),
		Departments:    sortedValues(r.departments),
		Staff:          sortedValues(r.staff),
		Counterparties: sortedValues(r.counterparties),
	}
}

func sortedValues[T any](m map[int32]T) []T {
	out := make([]T, 0, len(m))
	for _, id := range sortedIDs(m) {
		out = append(out, m[id])
	}
	return out
}

func sortedIDs[T any](m map[int32]T) []int32 {
	return slices.Sorted(maps.Keys(m))
}

// where is the row's table, id and version, for errors.
func (s Staff) where() tote.Where {
	return tote.Where{Table: "staff", ID: int64(s.ID), Version: s.LastUpdated}
}

// where is the row's table, id and version, for errors.
func (c Counterparty) where() tote.Where {
	return tote.Where{Table: "counterparty", ID: int64(c.ID), Version: c.LastUpdated}
}
