// Package logstore keeps CloudWatch Logs data on one server's disk: log
// groups, their streams and their events, under <DataDir>/logs/.
//
// Layout:
//
//	logs/catalog.log                  journal of groups and streams (framed JSON records)
//	logs/groups/<gid>/<seq20>.seg     append-only event segments of one group
//	logs/groups/<gid>/<seq20>.idx     index of a sealed segment (optional)
//
// Every group has its own segments; an event record names its stream by a
// numeric id that is never reused, so a deleted and re-created stream does
// not get its old events back. Appends are made durable with group commit:
// concurrent appenders write under the group's lock, then one of them
// fsyncs for all, and Append returns only once its bytes are on disk.
// Open replays the catalog, scans every segment (checking each record's
// CRC; a sealed segment with a matching index file is not scanned),
// truncates a torn tail and rebuilds the in-memory index: per
// segment and stream, the count and the time range of events, which lets a
// read skip segments that cannot hold what it asks for.
//
// Retention deletes whole segments whose newest event is older than the
// group's retention; reads filter the rest. A store-wide byte bound
// (Config.MaxBytes) deletes the oldest sealed segments first when it is
// exceeded, as Docker's json-file driver rotates its files.
//
// The store lives on one server's disk. Several servers sharing one etcd
// each have their own log store (a known limit, see docs/logs.md).
package logstore

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthdev/berth/internal/durable"
	"github.com/berthdev/berth/internal/errs"
)

// Defaults of Config.
const (
	DefaultMaxGroups          = 5000
	DefaultMaxStreamsPerGroup = 10000
	DefaultMaxStreams         = 100000
	DefaultSegmentBytes       = 32 << 20
	DefaultSegmentAge         = 6 * time.Hour
	DefaultMaxBytes           = 8 << 30
	MaxTags                   = 50
)

// Messages AWS uses for the errors the store returns.
const (
	MsgGroupNotFound  = "The specified log group does not exist."
	MsgStreamNotFound = "The specified log stream does not exist."
	MsgGroupExists    = "The specified log group already exists"
	MsgStreamExists   = "The specified log stream already exists"
	MsgLimitExceeded  = "Resource limit exceeded."
)

// Config configures a Store. It is not changed after Open.
type Config struct {
	Dir                string // directory of the store (required)
	MaxGroups          int    // default DefaultMaxGroups
	MaxStreamsPerGroup int    // default DefaultMaxStreamsPerGroup
	MaxStreams         int    // all groups together; default DefaultMaxStreams
	SegmentBytes       int64  // a segment is sealed past this size; default DefaultSegmentBytes
	// SegmentAge seals a segment older than this (so retention can delete
	// it); default DefaultSegmentAge.
	SegmentAge time.Duration
	MaxBytes   int64 // bound on all segments; default DefaultMaxBytes
	Log        *slog.Logger
}

// GroupInfo is what a log group is created with. Name and Created are
// immutable; RetentionDays and Tags change.
type GroupInfo struct {
	Name               string            `json:"name"`
	Created            int64             `json:"created"` // epoch ms
	Class              string            `json:"class,omitempty"`
	KMSKey             string            `json:"kms,omitempty"`
	DeletionProtection bool              `json:"dp,omitempty"`
	RetentionDays      int32             `json:"retention,omitempty"` // 0: never expire
	Tags               map[string]string `json:"tags,omitempty"`
}

// Group is a log group as described.
type Group struct {
	GroupInfo
	StoredBytes int64
	Streams     int
}

// Stream is a log stream as described. First/Last/LastIngestion are zero
// while HasEvents is false.
type Stream struct {
	Name          string
	Created       int64
	HasEvents     bool
	FirstEvent    int64
	LastEvent     int64
	LastIngestion int64
}

// Store is an open log store. Its methods are safe for concurrent use.
type Store struct {
	cfg Config
	log *slog.Logger

	// Lock order: mu before a group's mu is never taken; a group's mu may
	// be held while taking mu (stream creation) and jmu.
	mu       sync.RWMutex // groups, nextID, nstreams
	groups   map[string]*group
	nextID   uint64
	nstreams int
	closed   bool

	jmu     sync.Mutex // journal
	journal *os.File
	jrecs   int
}

type stream struct {
	id         uint64
	name       string
	created    int64
	has        bool
	first      int64
	last       int64
	lastIngest int64
}

type segStream struct {
	count        int
	minTs, maxTs int64
	maxIngest    int64
}

type segment struct {
	num          uint64
	path         string
	size         int64 // bytes of complete records
	minTs, maxTs int64
	minIngest    int64
	maxSeq       uint64
	count        int
	indexed      bool // its index file is written (sealed segments only)
	streams      map[uint64]*segStream
}

type group struct {
	s    *Store
	dir  string
	id   uint64
	mu   sync.Mutex
	info GroupInfo
	// streams by name and by id; only live streams.
	streams map[string]*stream
	byID    map[uint64]*stream
	segs    []*segment // by num; the last may be active
	active  *os.File   // file of segs[len-1] open for append, or nil
	opened  time.Time  // when active was opened or created
	nextSeq uint64
	deleted bool
	written int64 // logical bytes written since open
	retired []*os.File

	commitMu sync.Mutex
	synced   int64 // logical bytes known on disk; under commitMu
}

// catalog journal record
type catRec struct {
	Op   string     `json:"op"` // group, delgroup, stream, delstream, retention, tags
	GID  uint64     `json:"gid"`
	SID  uint64     `json:"sid,omitempty"`
	Info *GroupInfo `json:"info,omitempty"`
	Name string     `json:"name,omitempty"`
	// Created of a stream (epoch ms)
	Created   int64             `json:"created,omitempty"`
	Retention int32             `json:"retention,omitempty"`
	Tags      map[string]string `json:"tags,omitempty"`
}

// Open opens (or creates) the store in cfg.Dir, replaying its catalog
// and rebuilding the index from the segments.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("logstore: a directory is required")
	}
	if cfg.MaxGroups <= 0 {
		cfg.MaxGroups = DefaultMaxGroups
	}
	if cfg.MaxStreamsPerGroup <= 0 {
		cfg.MaxStreamsPerGroup = DefaultMaxStreamsPerGroup
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = DefaultSegmentBytes
	}
	if cfg.SegmentAge <= 0 {
		cfg.SegmentAge = DefaultSegmentAge
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "groups"), 0o755); err != nil {
		return nil, fmt.Errorf("logstore: %w", err)
	}
	s := &Store{cfg: cfg, log: cfg.Log, groups: map[string]*group{}, nextID: 1}
	if err := s.replayCatalog(); err != nil {
		return nil, err
	}
	for _, g := range s.groups {
		if err := g.load(); err != nil {
			s.closeFiles()
			return nil, err
		}
	}
	s.removeOrphans()
	if err := s.compactCatalog(); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

func (s *Store) catalogPath() string { return filepath.Join(s.cfg.Dir, "catalog.log") }

func (s *Store) groupDir(id uint64) string {
	return filepath.Join(s.cfg.Dir, "groups", strconv.FormatUint(id, 10))
}

func (s *Store) replayCatalog() error {
	f, err := os.OpenFile(s.catalogPath(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("logstore: open catalog: %w", err)
	}
	byID := map[uint64]*group{}
	r := &countingReader{r: bufio.NewReaderSize(f, 64<<10)}
	var buf []byte
	valid := int64(0)
	for {
		p, err := readRecord(r, buf)
		if err == io.EOF {
			break
		}
		if err == errTorn {
			s.log.Warn("log catalog has a torn tail; truncating", "offset", valid)
			break
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("logstore: read catalog: %w", err)
		}
		buf = p
		var rec catRec
		if err := json.Unmarshal(p, &rec); err != nil {
			f.Close()
			return fmt.Errorf("logstore: catalog record at %d: %w", valid, err)
		}
		valid = r.n
		s.jrecs++
		s.apply(rec, byID)
	}
	if err := f.Truncate(valid); err != nil {
		f.Close()
		return fmt.Errorf("logstore: truncate catalog: %w", err)
	}
	if _, err := f.Seek(valid, io.SeekStart); err != nil {
		f.Close()
		return err
	}
	s.journal = f
	return nil
}

// apply replays one catalog record into memory.
func (s *Store) apply(rec catRec, byID map[uint64]*group) {
	if rec.GID >= s.nextID {
		s.nextID = rec.GID + 1
	}
	if rec.SID >= s.nextID {
		s.nextID = rec.SID + 1
	}
	switch rec.Op {
	case "group":
		if rec.Info == nil {
			return
		}
		g := s.newGroup(rec.GID, *rec.Info)
		s.groups[g.info.Name] = g
		byID[g.id] = g
	case "delgroup":
		if g := byID[rec.GID]; g != nil {
			delete(byID, rec.GID)
			delete(s.groups, g.info.Name)
			s.nstreams -= len(g.streams)
		}
	case "stream":
		if g := byID[rec.GID]; g != nil {
			st := &stream{id: rec.SID, name: rec.Name, created: rec.Created}
			g.streams[st.name] = st
			g.byID[st.id] = st
			s.nstreams++
		}
	case "delstream":
		if g := byID[rec.GID]; g != nil {
			if st := g.byID[rec.SID]; st != nil {
				delete(g.byID, st.id)
				delete(g.streams, st.name)
				s.nstreams--
			}
		}
	case "retention":
		if g := byID[rec.GID]; g != nil {
			g.info.RetentionDays = rec.Retention
		}
	case "tags":
		if g := byID[rec.GID]; g != nil {
			g.info.Tags = rec.Tags
		}
	}
}

func (s *Store) newGroup(id uint64, info GroupInfo) *group {
	return &group{s: s, id: id, info: info, dir: s.groupDir(id), nextSeq: 1,
		streams: map[string]*stream{}, byID: map[uint64]*stream{}}
}

// writeCatalog appends records to the journal and fsyncs it.
func (s *Store) writeCatalog(recs ...catRec) error {
	var buf []byte
	for _, r := range recs {
		p, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf = appendRecord(buf, p)
	}
	s.jmu.Lock()
	defer s.jmu.Unlock()
	if s.journal == nil {
		return errs.E(errs.Unavailable, "the log store is closed")
	}
	off, err := s.journal.Seek(0, io.SeekCurrent)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "write log catalog")
	}
	if _, err := s.journal.Write(buf); err != nil {
		_ = s.journal.Truncate(off)
		_, _ = s.journal.Seek(off, io.SeekStart)
		return errs.Wrap(errs.Unavailable, err, "write log catalog")
	}
	if err := s.journal.Sync(); err != nil {
		return errs.Wrap(errs.Unavailable, err, "sync log catalog")
	}
	s.jrecs += len(recs)
	return nil
}

// compactCatalog rewrites the journal as a snapshot when it holds many
// more records than live objects. Called from Open only.
func (s *Store) compactCatalog() error {
	live := len(s.groups) + s.nstreams
	if s.jrecs <= 2*live+1000 {
		return nil
	}
	var buf []byte
	for _, g := range s.groups {
		info := g.info
		p, _ := json.Marshal(catRec{Op: "group", GID: g.id, Info: &info})
		buf = appendRecord(buf, p)
		for _, st := range g.streams {
			p, _ := json.Marshal(catRec{Op: "stream", GID: g.id, SID: st.id, Name: st.name, Created: st.created})
			buf = appendRecord(buf, p)
		}
	}
	if err := durable.WriteFile(s.catalogPath(), buf, 0o644); err != nil {
		return fmt.Errorf("logstore: compact catalog: %w", err)
	}
	s.journal.Close()
	f, err := os.OpenFile(s.catalogPath(), os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return err
	}
	s.journal = f
	s.jrecs = live
	return nil
}

// removeOrphans deletes group directories the catalog does not know (a
// crash between creating a directory and journaling the group, or
// between journaling a deletion and removing the files).
func (s *Store) removeOrphans() {
	known := map[string]bool{}
	for _, g := range s.groups {
		known[filepath.Base(g.dir)] = true
	}
	ents, _ := os.ReadDir(filepath.Join(s.cfg.Dir, "groups"))
	for _, e := range ents {
		if !known[e.Name()] {
			_ = os.RemoveAll(filepath.Join(s.cfg.Dir, "groups", e.Name()))
		}
	}
}

// Close writes the missing index files of sealed segments, then syncs
// and closes every file. Idempotent.
func (s *Store) Close() error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if !closed {
		s.WriteIndexes()
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	groups := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		groups = append(groups, g)
	}
	s.mu.Unlock()
	var first error
	for _, g := range groups {
		if err := g.closeFiles(false); err != nil && first == nil {
			first = err
		}
	}
	s.jmu.Lock()
	if s.journal != nil {
		if err := s.journal.Close(); err != nil && first == nil {
			first = err
		}
		s.journal = nil
	}
	s.jmu.Unlock()
	return first
}

func (s *Store) closeFiles() {
	for _, g := range s.groups {
		_ = g.closeFiles(false)
	}
	if s.journal != nil {
		s.journal.Close()
		s.journal = nil
	}
}

// closeFiles stops appends to g (when deleting) and syncs and closes its
// open files, waiting for an fsync in flight.
func (g *group) closeFiles(deleting bool) error {
	g.mu.Lock()
	if deleting {
		g.deleted = true
	}
	files := append(g.retired, g.active)
	g.retired, g.active = nil, nil
	g.mu.Unlock()
	g.commitMu.Lock()
	defer g.commitMu.Unlock()
	var first error
	for _, f := range files {
		if f == nil {
			continue
		}
		if !deleting {
			if err := f.Sync(); err != nil && first == nil {
				first = err
			}
		}
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (s *Store) lookup(name string) (*group, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errs.E(errs.Unavailable, "the log store is closed")
	}
	g := s.groups[name]
	if g == nil {
		return nil, errs.E(errs.NotFound, MsgGroupNotFound)
	}
	return g, nil
}

// CreateGroup creates a log group. errs.AlreadyExists if it exists,
// errs.LimitExceeded beyond Config.MaxGroups.
func (s *Store) CreateGroup(info GroupInfo) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errs.E(errs.Unavailable, "the log store is closed")
	}
	if s.groups[info.Name] != nil {
		return errs.E(errs.AlreadyExists, MsgGroupExists)
	}
	if len(s.groups) >= s.cfg.MaxGroups {
		return errs.E(errs.LimitExceeded, MsgLimitExceeded)
	}
	info.Tags = cloneTags(info.Tags)
	id := s.nextID
	g := s.newGroup(id, info)
	if err := os.MkdirAll(g.dir, 0o755); err != nil {
		return errs.Wrap(errs.Unavailable, err, "create log group directory")
	}
	if err := durable.SyncDir(filepath.Dir(g.dir)); err != nil {
		return errs.Wrap(errs.Unavailable, err, "create log group directory")
	}
	if err := s.writeCatalog(catRec{Op: "group", GID: id, Info: &info}); err != nil {
		_ = os.RemoveAll(g.dir)
		return err
	}
	s.nextID++
	s.groups[info.Name] = g
	return nil
}

// DeleteGroup deletes a log group with its streams and events.
func (s *Store) DeleteGroup(name string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errs.E(errs.Unavailable, "the log store is closed")
	}
	g := s.groups[name]
	if g == nil {
		s.mu.Unlock()
		return errs.E(errs.NotFound, MsgGroupNotFound)
	}
	if err := s.writeCatalog(catRec{Op: "delgroup", GID: g.id}); err != nil {
		s.mu.Unlock()
		return err
	}
	delete(s.groups, name)
	s.mu.Unlock()
	// Lock order is g.mu before s.mu (stream creation): count the streams
	// with s.mu released. Once deleted is set no stream is added.
	g.mu.Lock()
	g.deleted = true
	n := len(g.streams)
	g.mu.Unlock()
	s.mu.Lock()
	s.nstreams -= n
	s.mu.Unlock()
	_ = g.closeFiles(true)
	if err := os.RemoveAll(g.dir); err != nil {
		s.log.Warn("remove deleted log group's files (removed at next start)", "group", name, "err", err)
	}
	return nil
}

// Group returns one log group.
func (s *Store) Group(name string) (Group, error) {
	g, err := s.lookup(name)
	if err != nil {
		return Group{}, err
	}
	return g.describe(), nil
}

// Groups returns every log group, sorted by name.
func (s *Store) Groups() []Group {
	s.mu.RLock()
	gs := make([]*group, 0, len(s.groups))
	for _, g := range s.groups {
		gs = append(gs, g)
	}
	s.mu.RUnlock()
	out := make([]Group, 0, len(gs))
	for _, g := range gs {
		out = append(out, g.describe())
	}
	slices.SortFunc(out, func(a, b Group) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (g *group) describe() Group {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := Group{GroupInfo: g.info, Streams: len(g.streams)}
	out.Tags = cloneTags(g.info.Tags)
	for _, seg := range g.segs {
		out.StoredBytes += seg.size
	}
	return out
}

// SetRetention sets (days > 0) or removes (0) a group's retention.
func (s *Store) SetRetention(name string, days int32) error {
	g, err := s.lookup(name)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deleted {
		return errs.E(errs.NotFound, MsgGroupNotFound)
	}
	if err := s.writeCatalog(catRec{Op: "retention", GID: g.id, Retention: days}); err != nil {
		return err
	}
	g.info.RetentionDays = days
	return nil
}

// UpdateTags adds (or overwrites) tags and removes keys. errs.LimitExceeded
// (reason ReasonTooManyTags) beyond MaxTags.
func (s *Store) UpdateTags(name string, add map[string]string, remove []string) error {
	g, err := s.lookup(name)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deleted {
		return errs.E(errs.NotFound, MsgGroupNotFound)
	}
	tags := cloneTags(g.info.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	for k, v := range add {
		tags[k] = v
	}
	for _, k := range remove {
		delete(tags, k)
	}
	if len(tags) > MaxTags {
		return errs.R(errs.LimitExceeded, ReasonTooManyTags, "A resource can have no more than %d tags.", MaxTags)
	}
	if err := s.writeCatalog(catRec{Op: "tags", GID: g.id, Tags: tags}); err != nil {
		return err
	}
	g.info.Tags = tags
	return nil
}

// ReasonTooManyTags marks the error of UpdateTags beyond MaxTags.
const ReasonTooManyTags = "logs.too_many_tags"

// CreateStream creates a log stream at now (epoch ms).
func (s *Store) CreateStream(groupName, name string, now int64) error {
	g, err := s.lookup(groupName)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deleted {
		return errs.E(errs.NotFound, MsgGroupNotFound)
	}
	if g.streams[name] != nil {
		return errs.E(errs.AlreadyExists, MsgStreamExists)
	}
	_, err = g.createStreamLocked(name, now)
	return err
}

// createStreamLocked adds a stream; g.mu is held.
func (g *group) createStreamLocked(name string, now int64) (*stream, error) {
	s := g.s
	if len(g.streams) >= s.cfg.MaxStreamsPerGroup {
		return nil, errs.E(errs.LimitExceeded, MsgLimitExceeded)
	}
	s.mu.Lock()
	if s.nstreams >= s.cfg.MaxStreams {
		s.mu.Unlock()
		return nil, errs.E(errs.LimitExceeded, MsgLimitExceeded)
	}
	id := s.nextID
	s.nextID++
	s.nstreams++
	s.mu.Unlock()
	if err := s.writeCatalog(catRec{Op: "stream", GID: g.id, SID: id, Name: name, Created: now}); err != nil {
		s.mu.Lock()
		s.nstreams--
		s.mu.Unlock()
		return nil, err
	}
	st := &stream{id: id, name: name, created: now}
	g.streams[name] = st
	g.byID[id] = st
	return st, nil
}

// DeleteStream deletes a log stream; its events become unreadable at
// once and leave the disk with their segments.
func (s *Store) DeleteStream(groupName, name string) error {
	g, err := s.lookup(groupName)
	if err != nil {
		return err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.deleted {
		return errs.E(errs.NotFound, MsgGroupNotFound)
	}
	st := g.streams[name]
	if st == nil {
		return errs.E(errs.NotFound, MsgStreamNotFound)
	}
	if err := s.writeCatalog(catRec{Op: "delstream", GID: g.id, SID: st.id}); err != nil {
		return err
	}
	delete(g.streams, name)
	delete(g.byID, st.id)
	s.mu.Lock()
	s.nstreams--
	s.mu.Unlock()
	return nil
}

// Streams returns a group's streams, sorted by name.
func (s *Store) Streams(groupName string) ([]Stream, error) {
	g, err := s.lookup(groupName)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]Stream, 0, len(g.streams))
	for _, st := range g.streams {
		out = append(out, st.describe())
	}
	slices.SortFunc(out, func(a, b Stream) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// LastSeq returns the sequence number of the group's newest event (0
// when it has none): a Query with AfterSeq set to it sees only events
// appended later.
func (s *Store) LastSeq(groupName string) (uint64, error) {
	g, err := s.lookup(groupName)
	if err != nil {
		return 0, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.nextSeq - 1, nil
}

// Stream returns one stream.
func (s *Store) Stream(groupName, name string) (Stream, error) {
	g, err := s.lookup(groupName)
	if err != nil {
		return Stream{}, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.streams[name]
	if st == nil {
		return Stream{}, errs.E(errs.NotFound, MsgStreamNotFound)
	}
	return st.describe(), nil
}

func (st *stream) describe() Stream {
	return Stream{Name: st.name, Created: st.created, HasEvents: st.has,
		FirstEvent: st.first, LastEvent: st.last, LastIngestion: st.lastIngest}
}

func cloneTags(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func cmpKey(a, b Key) int {
	if c := cmp.Compare(a.TS, b.TS); c != 0 {
		return c
	}
	return cmp.Compare(a.Seq, b.Seq)
}
