package extract

import (
	"archive/tar"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/rs/zerolog"
)

// Sent is what the copy in sent of one regular file: its size, its
// modification time in whole seconds (as the engine's archives carry it)
// and its permission bits.
type Sent struct {
	Size    int64
	ModTime int64 // Unix seconds
	Perm    fs.FileMode
}

// MirrorOptions are what Mirror needs beyond the stream.
type MirrorOptions struct {
	// Sent are the names (relative to the destination, "/"-separated) that
	// the copy in sent, every kind of entry, for the deletions.
	Sent []string
	// Unchanged are the regular files of Sent that may be skipped when they
	// come back as they went (a file modified in the second of the copy in
	// is not among them: a change in that second would keep its time).
	Unchanged map[string]Sent
	// Owner, when set, is the uid and gid given to every entry written (for
	// a sibling-run that runs as root: the working directory's owner).
	Owner *[2]int
}

// MirrorStats says what a Mirror did.
type MirrorStats struct {
	Entries   int   // entries taken from the stream
	Unchanged int   // regular files left as they were
	Bytes     int64 // bytes of files written
	Removed   int   // entries the build deleted, removed here
	// NotRemoved counts entries that the build deleted but that could not
	// be removed (a directory that holds something else now, a failure).
	NotRemoved int
}

// mirroring is the state a Mirror adds to an extraction.
type mirroring struct {
	opts MirrorOptions
	top  string // the stream's top name, the directory the engine sent
	seen map[string]bool
	// left are the files left as they were; counted, the entries taken.
	left    map[string]bool
	entries int
}

// Mirror makes dest hold what the tar stream r holds: the engine's archive
// of a directory, whose entries all lie under one top name (the directory's
// own, which stands for dest). It writes with the checks of Tar (no entry or
// link outside dest, no device or fifo), keeps the entries' modification
// times, leaves a file of opts.Unchanged alone when the stream and dest both
// still have it as it was sent, and once the stream has ended complete,
// removes the names of opts.Sent that it did not hold: what the build
// deleted. A broken stream removes nothing. Nothing is followed through a
// link: dest is an os.Root, and a name under a link is refused.
func Mirror(r io.Reader, dest *os.Root, opts MirrorOptions, log zerolog.Logger) (MirrorStats, error) {
	m := &mirroring{opts: opts, seen: map[string]bool{".": true}, left: map[string]bool{}}
	budget := int64(math.MaxInt64)
	x := newExtraction(dest, &budget, m, log)
	written, err := x.extract(r)
	stats := MirrorStats{Entries: m.entries, Unchanged: len(m.left), Bytes: written}
	if err != nil {
		return stats, err
	}
	stats.Removed, stats.NotRemoved = m.removeUnseen(dest)
	return stats, nil
}

// underTop turns a cleaned entry name into one relative to the destination:
// the first entry's first component is the top, and every entry must lie
// under it.
func (m *mirroring) underTop(name string) (string, bool) {
	first, rest, _ := strings.Cut(name, "/")
	if m.top == "" {
		m.top = first
	}
	if first != m.top {
		return "", false
	}
	if rest == "" {
		return ".", true
	}
	return rest, true
}

// unchanged reports whether the file name, as hdr describes it, is one of
// opts.Unchanged that both the stream and dest still have as it was sent.
func (m *mirroring) unchanged(dest *os.Root, name string, hdr *tar.Header) bool {
	sent, ok := m.opts.Unchanged[name]
	if !ok || hdr.Size != sent.Size || hdr.ModTime.Unix() != sent.ModTime || fs.FileMode(hdr.Mode)&fs.ModePerm != sent.Perm {
		return false
	}
	info, err := dest.Lstat(name)
	if err != nil || !info.Mode().IsRegular() || info.Size() != sent.Size || info.ModTime().Unix() != sent.ModTime || info.Mode().Perm() != sent.Perm {
		return false
	}
	m.left[name] = true
	return true
}

// written records an entry the extraction wrote (or left, unchanged) and
// gives it its time and owner.
func (m *mirroring) written(x *extraction, name string, hdr *tar.Header) {
	m.seen[name] = true
	m.entries++
	if m.left[name] {
		return
	}
	if m.opts.Owner != nil {
		if err := x.dest.Lchown(name, m.opts.Owner[0], m.opts.Owner[1]); err != nil {
			x.log.Debug().Err(err).Str("entry", name).Msg("giving an entry the working directory's owner failed")
		}
	}
	if hdr.Typeflag == tar.TypeReg || hdr.Typeflag == 0 {
		if err := x.dest.Chtimes(name, hdr.ModTime, hdr.ModTime); err != nil {
			x.log.Debug().Err(err).Str("entry", name).Msg("setting a file's time failed")
		}
	}
}

// removeUnseen removes what was sent and did not come back, deepest first,
// so that a directory the build deleted goes after what it held. A
// directory that is not empty now (something else wrote into it) stays.
func (m *mirroring) removeUnseen(dest *os.Root) (removed, failed int) {
	var gone []string
	for _, name := range m.opts.Sent {
		if !m.seen[name] && name != "." {
			gone = append(gone, name)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(gone)))
	for _, name := range gone {
		err := dest.Remove(name)
		switch {
		case err == nil:
			removed++
		case !errors.Is(err, fs.ErrNotExist):
			failed++ // a directory that holds something new, or a failure
		}
	}
	return removed, failed
}
