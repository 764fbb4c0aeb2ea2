package core

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/hyperd/hyperd/fsm"
	"github.com/hyperd/hyperd/sdk"
)

// storeFile is the store's name inside the state directory.
const storeFile = "hyperd.db"

// storeOpenTimeout bounds the wait for the store's file lock. A second
// daemon on the same state directory fails after it instead of hanging.
const storeOpenTimeout = 2 * time.Second

var vmsBucket = []byte("vms")

// ErrVMNotFound: no VM has the id.
var ErrVMNotFound = errors.New("no such vm")

// Record is what the store keeps for one VM.
type Record struct {
	ID     string `json:"id"`
	Driver string `json:"driver"`
	// ContractVersion is the contract version the driver spoke when the
	// handle was made.
	ContractVersion uint32     `json:"contract_version"`
	Spec            sdk.Spec   `json:"spec"`
	State           fsm.State  `json:"-"`
	StateName       string     `json:"state"`
	Reason          string     `json:"reason,omitempty"`
	LastError       string     `json:"last_error,omitempty"`
	Handle          sdk.Handle `json:"handle"`
	PID             int64      `json:"pid,omitempty"`
	ConsoleLog      string     `json:"console_log,omitempty"`
	WorkDir         string     `json:"work_dir"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// Store keeps VM records in a bbolt file. Every write is one transaction,
// committed and synced before it returns.
type Store struct {
	db *bolt.DB
}

// OpenStore opens or creates the store in dir.
func OpenStore(dir string) (s *Store, err error) {
	path := filepath.Join(dir, storeFile)
	// bbolt would take an empty file for a new store and forget every VM
	// the lost one held; a store is never empty once written.
	if fi, err := os.Stat(path); err == nil && fi.Size() == 0 {
		return nil, fmt.Errorf("open store %s: the file is empty, so it was truncated; move it aside to start with an empty store (running VMs will not be recovered)", path)
	}
	defer func() {
		// bbolt panics on some damaged pages instead of returning an
		// error; turn that into the refusal an operator can act on.
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("open store %s: damaged (%v); move the file aside to start with an empty store", path, p)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: storeOpenTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: another hyperd holds it; stop it or use another --state-dir", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w (move the file aside to start with an empty store)", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(vmsBucket)
		return err
	})
	if err != nil {
		_ = db.Close() // the store is unusable either way; report the first error
		return nil, fmt.Errorf("init store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the store's file.
func (s *Store) Close() error { return s.db.Close() }

// Put writes r, replacing any record with its id.
func (s *Store) Put(r Record) error {
	r.StateName = r.State.String()
	buf, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode vm %s: %w", r.ID, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(vmsBucket).Put([]byte(r.ID), buf)
	})
	if err != nil {
		return fmt.Errorf("store vm %s: %w", r.ID, err)
	}
	return nil
}

// Delete removes the record of id. Deleting a missing record succeeds.
func (s *Store) Delete(id string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(vmsBucket).Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("delete vm %s: %w", id, err)
	}
	return nil
}

// List returns every record, oldest first. A record that cannot be decoded
// is returned in bad with its error instead of being dropped.
func (s *Store) List() (good []Record, bad map[string]error, err error) {
	bad = make(map[string]error)
	defer func() {
		// bbolt panics on a damaged page instead of returning an error.
		if p := recover(); p != nil {
			good, bad, err = nil, nil, fmt.Errorf("list vms: the store is damaged (%v); move %s aside to start with an empty store", p, s.db.Path())
		}
	}()
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(vmsBucket).ForEach(func(k, v []byte) error {
			r, err := decodeRecord(v)
			if err != nil {
				bad[string(k)] = err
				return nil
			}
			good = append(good, r)
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list vms: %w", err)
	}
	sort.Slice(good, func(i, j int) bool { return good[i].CreatedAt.Before(good[j].CreatedAt) })
	return good, bad, nil
}

func decodeRecord(v []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(v, &r); err != nil {
		return Record{}, fmt.Errorf("decode: %w", err)
	}
	st, err := fsm.ParseState(r.StateName)
	if err != nil {
		return Record{}, err
	}
	r.State = st
	return r, nil
}

// ensureDir makes dir with mode perm if it is missing.
func ensureDir(dir string, perm os.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("make directory %s: %w", dir, err)
	}
	return nil
}
