// Package extract unpacks a tar stream (an artifact, as the engine's archive
// API sends it) into a directory held as an os.Root, and nowhere else: no
// entry lands outside it, no link points outside it, no device or fifo is
// made, and a byte budget caps what is written. It is pure (no engine, no
// flags); runner's artifact copy is its one caller, and the after-build pass
// shares its notion of a link that leaves the directory (LinkStaysInside).
package extract

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
)

// BufferSize is the buffer for reading the engine's tar stream and for
// writing each file: big enough that a large artifact moves in few system
// calls.
const BufferSize = 1 << 20

// maxRefusalLines bounds the warning lines one extraction prints, so that a
// stream of a million refused entries cannot flood the task log.
const maxRefusalLines = 20

// ErrSizeCap reports that an artifact would exceed --artifact-max-size.
var ErrSizeCap = errors.New("exceeds --artifact-max-size")

// extraction unpacks one tar stream into the directory dest, and nowhere
// else, whatever the stream holds: no entry lands outside dest (absolute
// names, "..", a path through a symbolic link), no link points outside it
// (a build must not plant a link to the agent's own files for an artifact
// upload to follow), and no device node or fifo is made. Files get the
// permission bits of the stream (no setuid, setgid or sticky bit) and belong
// to this process's user. Each refused entry is named in a warning.
type extraction struct {
	dest *os.Root
	// budget is the number of bytes that files may still take; shared by the
	// artifacts of one run.
	budget *int64
	log    zerolog.Logger

	buf      []byte
	realDirs map[string]bool  // directories checked to be real, not links
	dirModes map[string]int64 // permission bits to give directories at the end
	refused  int
	partials int // temporary names handed out

	// mirror is set for the copy back of a remote working directory
	// (Mirror); nil for an artifact.
	mirror *mirroring
}

// Tar unpacks r into dest within budget bytes (decremented by what is
// written) and returns the number of bytes written. It fails on a broken
// stream, on a write that fails, or with ErrSizeCap when the budget runs out;
// entries it refuses for safety are logged and skipped.
func Tar(r io.Reader, dest *os.Root, budget *int64, log zerolog.Logger) (int64, error) {
	return newExtraction(dest, budget, nil, log).extract(r)
}

func newExtraction(dest *os.Root, budget *int64, mirror *mirroring, log zerolog.Logger) *extraction {
	return &extraction{
		dest:     dest,
		budget:   budget,
		log:      log,
		buf:      make([]byte, BufferSize),
		realDirs: map[string]bool{".": true},
		dirModes: map[string]int64{},
		mirror:   mirror,
	}
}

func (x *extraction) extract(r io.Reader) (int64, error) {
	written, err := x.run(tar.NewReader(r))
	x.applyDirModes()
	if x.refused > maxRefusalLines {
		x.log.Warn().Int("refused", x.refused).Msg("refused more entries than shown")
	}
	return written, err
}

func (x *extraction) run(tr *tar.Reader) (int64, error) {
	var written int64
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return written, nil
		}
		if err != nil {
			return written, fmt.Errorf("reading the archive: %w; what follows in it was not copied", err)
		}
		name, ok := entryName(hdr.Name)
		if ok && x.mirror != nil {
			name, ok = x.mirror.underTop(name)
		}
		if !ok {
			x.refuse(hdr.Name, "its name leads outside the destination")
			continue
		}
		if name == "." {
			continue // the destination itself keeps its own mode
		}
		if !x.parentIsReal(name) {
			x.refuse(hdr.Name, "its directory is a symbolic link or not a directory")
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = x.dir(name, hdr)
		case tar.TypeReg, 0: // 0: the old spelling of a regular file
			var n int64
			n, err = x.file(name, hdr, tr)
			written += n
		case tar.TypeSymlink:
			err = x.symlink(name, hdr)
		case tar.TypeLink:
			err = x.hardlink(name, hdr)
		case tar.TypeXGlobalHeader:
			continue
		default:
			x.refuse(hdr.Name, "only files, directories and links are copied")
			continue
		}
		if err == nil && x.mirror != nil {
			x.mirror.written(x, name, hdr)
		}
		var refused refusal
		if errors.As(err, &refused) {
			x.refuse(hdr.Name, string(refused))
			continue
		}
		if errors.Is(err, ErrSizeCap) {
			err = fmt.Errorf("%q %w", name, err)
		}
		if err != nil {
			return written, fmt.Errorf("%w; %q and what follows it in the archive were not copied", err, name)
		}
	}
}

// what names the stream in messages.
func (x *extraction) what() string {
	if x.mirror != nil {
		return "a working-directory"
	}
	return "an artifact"
}

// refusal is an entry skipped for safety, not a failure of the copy.
type refusal string

func (r refusal) Error() string { return string(r) }

func (x *extraction) refuse(name, why string) {
	x.refused++
	if x.refused <= maxRefusalLines {
		x.log.Warn().Str("entry", name).Str("reason", why).Msg("refused " + x.what() + " entry")
	}
}

// entryName cleans a name from the stream into a path relative to the
// destination, or reports that it leads outside it.
func entryName(name string) (string, bool) {
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) {
		return "", false
	}
	clean := path.Clean(name)
	if clean == ".." || strings.HasPrefix(clean, "../") {
		return "", false
	}
	return clean, true
}

// parentIsReal makes sure that every directory above name is a directory and
// not a symbolic link, creating those that are missing. Nothing is ever
// written through a link, so a link cannot carry a later entry, or a later
// link's target, anywhere the names do not say.
func (x *extraction) parentIsReal(name string) bool {
	return x.realDir(path.Dir(name))
}

func (x *extraction) realDir(dir string) bool {
	if x.realDirs[dir] {
		return true
	}
	if !x.realDir(path.Dir(dir)) {
		return false
	}
	info, err := x.dest.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := x.dest.Mkdir(dir, 0o755); err != nil {
			return false
		}
	case err != nil || !info.IsDir():
		return false
	}
	x.realDirs[dir] = true
	return true
}

func (x *extraction) dir(name string, hdr *tar.Header) error {
	info, err := x.dest.Lstat(name)
	if err == nil && !info.IsDir() {
		if err := x.dest.Remove(name); err != nil {
			return fmt.Errorf("replacing %q with a directory: %w", name, bare(err))
		}
		err = fs.ErrNotExist
	}
	if errors.Is(err, fs.ErrNotExist) {
		// Writable while its entries arrive; its own mode comes at the end.
		if err := x.dest.Mkdir(name, 0o700); err != nil {
			return fmt.Errorf("creating directory %q: %w", name, bare(err))
		}
	} else if err != nil {
		return fmt.Errorf("creating directory %q: %w", name, bare(err))
	}
	x.realDirs[name] = true
	x.dirModes[name] = hdr.Mode
	return nil
}

// file writes a regular file beside name under a temporary name and renames
// it to name only once it is complete, so that a copy that fails (a full
// disk, a stream cut short) leaves nothing that looks like the artifact.
func (x *extraction) file(name string, hdr *tar.Header, tr io.Reader) (int64, error) {
	if hdr.Size < 0 {
		return 0, refusal("its size is negative")
	}
	if hdr.Size > *x.budget {
		return 0, ErrSizeCap
	}
	if x.mirror != nil && x.mirror.unchanged(x.dest, name, hdr) {
		return 0, nil
	}
	partial, f, err := x.createPartial(name)
	if err != nil {
		return 0, fmt.Errorf("creating %q: %w", name, bare(err))
	}
	// Hide the file's ReadFrom, which would copy through a small buffer.
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, tr, x.buf)
	*x.budget -= n
	if err == nil {
		err = f.Chmod(fs.FileMode(hdr.Mode) & fs.ModePerm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = x.clear(name)
	}
	if err == nil {
		err = x.dest.Rename(partial, name)
	}
	if err != nil {
		_ = x.dest.Remove(partial)
		// The temporary name the system's error would show means nothing
		// to a reader; the entry's name does.
		return n, fmt.Errorf("writing %q: %w", name, bare(err))
	}
	return n, nil
}

// PartialPrefix starts the temporary name of a file being written; the
// pass after the build removes what a killed run left of such files.
const PartialPrefix = ".sibling-run-partial-"

// createPartial creates a new file with a temporary name beside final; a
// name in use, or final's own, is skipped.
func (x *extraction) createPartial(final string) (string, *os.File, error) {
	for {
		x.partials++
		name := path.Join(path.Dir(final), PartialPrefix+strconv.Itoa(x.partials))
		if name == final {
			continue
		}
		f, err := x.dest.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return name, f, err
		}
	}
}

func (x *extraction) symlink(name string, hdr *tar.Header) error {
	if !LinkStaysInside(path.Dir(name), hdr.Linkname) {
		return refusal(fmt.Sprintf("its target %q leads outside the destination", hdr.Linkname))
	}
	if err := x.clear(name); err != nil {
		return err
	}
	if err := x.dest.Symlink(hdr.Linkname, name); err != nil {
		return fmt.Errorf("creating symbolic link %q: %w", name, bare(err))
	}
	return nil
}

// LinkStaysInside reports whether a symbolic link in the real directory dir
// (relative to the destination) with the given target resolves inside the
// destination. The target must be relative; it may climb with leading ".."
// no higher than the destination and must then only descend: a ".." after a
// name would climb from wherever that name leads, which need not be where
// the name says. Every link is checked so, and none is created under a link,
// so following any chain of them stays inside.
func LinkStaysInside(dir, target string) bool {
	if target == "" || strings.HasPrefix(target, "/") || strings.ContainsRune(target, 0) {
		return false
	}
	depth := 0
	if dir != "." {
		depth = strings.Count(dir, "/") + 1
	}
	climbing := true
	for _, part := range strings.Split(target, "/") {
		switch {
		case part == "..":
			if !climbing || depth == 0 {
				return false
			}
			depth--
		case part == "" || part == ".":
		default:
			climbing = false
		}
	}
	return true
}

func (x *extraction) hardlink(name string, hdr *tar.Header) error {
	target, ok := entryName(hdr.Linkname)
	if !ok || target == "." {
		return refusal(fmt.Sprintf("its target %q is outside the destination", hdr.Linkname))
	}
	if !x.parentIsReal(target) {
		return refusal(fmt.Sprintf("its target %q lies under a symbolic link", hdr.Linkname))
	}
	// Only regular files: a hard link to a symbolic link is another symbolic
	// link with the same target, which can lead outside from its new place.
	info, err := x.dest.Lstat(target)
	if err != nil || !info.Mode().IsRegular() {
		return refusal(fmt.Sprintf("its target %q is not a regular file copied before it", hdr.Linkname))
	}
	if target == name {
		return nil
	}
	if err := x.clear(name); err != nil {
		return err
	}
	if err := x.dest.Link(target, name); err != nil {
		return fmt.Errorf("creating hard link %q: %w", name, bare(err))
	}
	return nil
}

// clear removes whatever is at name, so that a new entry replaces it instead
// of writing through it: a later entry of the same name wins, as with tar.
func (x *extraction) clear(name string) error {
	info, err := x.dest.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("replacing %q: %w", name, bare(err))
	}
	if info.IsDir() {
		err = x.dest.RemoveAll(name)
		for dir := range x.realDirs {
			if dir == name || strings.HasPrefix(dir, name+"/") {
				delete(x.realDirs, dir)
				delete(x.dirModes, dir)
			}
		}
	} else {
		err = x.dest.Remove(name)
	}
	if err != nil {
		return fmt.Errorf("replacing %q: %w", name, bare(err))
	}
	return nil
}

// applyDirModes gives directories their permission bits from the stream,
// deepest first, now that nothing more is written into them.
func (x *extraction) applyDirModes() {
	dirs := make([]string, 0, len(x.dirModes))
	for dir := range x.dirModes {
		dirs = append(dirs, dir)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, dir := range dirs {
		if !x.realDirs[dir] {
			continue
		}
		// The owner keeps full access, so that the agent can always clean up.
		mode := fs.FileMode(x.dirModes[dir])&fs.ModePerm | 0o700
		if err := x.dest.Chmod(dir, mode); err != nil {
			x.log.Warn().Err(err).Str("entry", dir).Msgf("setting %s directory's mode failed", x.what())
		}
	}
}

// bare returns the system's reason inside err, without the path that a
// *fs.PathError or *os.LinkError repeats unquoted: entry names come from the
// build, and every message quotes them itself, so that a name holding a
// newline or a terminal escape cannot forge a line of sibling-run's.
func bare(err error) error {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	var linkErr *os.LinkError
	if errors.As(err, &linkErr) {
		return linkErr.Err
	}
	return err
}
