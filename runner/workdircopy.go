package runner

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/rs/zerolog"

	"sibling-run/runner/internal/extract"
)

// A remote engine does not see this host's files: the working directory is
// copied into the run volume (runVolume) before the build starts, and what
// the build changed comes back after it. Both directions stream through
// the engine's archive API: no archive on disk, memory bounded by one
// buffer and the list of names sent.

// copyBufferSize is the buffer between the walk and the engine's request.
const copyBufferSize = 1 << 20

// sentTree is what the copy in sent, for the copy back's deletions and
// its skipping of unchanged files.
type sentTree struct {
	options            extract.MirrorOptions
	files, dirs, links int
	skipped            []string // sockets, fifos, devices, and files that changed kind while read
	bytes              int64
}

// tarWorkdir writes a tar of the directory held in root to w, every name
// under top (the directory's own name, as the engine extracts it into the
// directory above), owned by uid:gid (or this host's owners when uid < 0).
// It follows no link: a link is sent as one. Sockets, fifos and devices
// are skipped. Files modified at or after since (the copy's start, to the
// second) are not listed as unchanged: a change in that second would keep
// their time.
func tarWorkdir(w io.Writer, root *os.Root, top string, uid, gid int, since time.Time) (sentTree, error) {
	t := &tarWalk{tw: tar.NewWriter(w), root: root, top: top, uid: uid, gid: gid, since: since.Unix(), buf: make([]byte, copyBufferSize)}
	t.sent.options.Unchanged = map[string]extract.Sent{}
	info, err := root.Stat(".")
	if err != nil {
		return t.sent, err
	}
	if err := t.walk(".", info); err != nil {
		return t.sent, err
	}
	return t.sent, t.tw.Close()
}

type tarWalk struct {
	tw       *tar.Writer
	root     *os.Root
	top      string
	uid, gid int
	since    int64
	buf      []byte
	sent     sentTree
}

// header is name's tar header from info, with the build's owner.
func (t *tarWalk) header(name string, info fs.FileInfo, link string) (*tar.Header, error) {
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return nil, err
	}
	hdr.Name = path.Join(t.top, name)
	if info.IsDir() {
		hdr.Name += "/"
	}
	hdr.Mode = int64(info.Mode().Perm())
	hdr.ModTime = info.ModTime().Truncate(time.Second)
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	hdr.Uname, hdr.Gname = "", ""
	if t.uid >= 0 {
		hdr.Uid, hdr.Gid = t.uid, t.gid
	}
	return hdr, nil
}

func (t *tarWalk) walk(dir string, info fs.FileInfo) error {
	hdr, err := t.header(dir, info, "")
	if err != nil {
		return err
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	t.sent.dirs++
	t.sent.options.Sent = append(t.sent.options.Sent, dir)
	f, err := t.root.Open(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	entries, err := f.ReadDir(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if dir != "." {
			name = dir + "/" + name
		}
		info, err := t.root.Lstat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // gone since the directory was read
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			err = t.walk(name, info)
		case mode.IsRegular():
			err = t.file(name, info)
		case mode&fs.ModeSymlink != 0:
			err = t.symlink(name, info)
		default:
			t.sent.skipped = append(t.sent.skipped, name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// file sends a regular file. It is opened without following a link and
// must still be the file that Lstat saw; its size is the one sent, a file
// that shrank meanwhile is padded with zeros (the build sees a torn file,
// as it would have through a bind).
func (t *tarWalk) file(name string, info fs.FileInfo) error {
	f, err := t.root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.sent.skipped = append(t.sent.skipped, name)
		return nil
	}
	defer f.Close()
	now, err := f.Stat()
	if err != nil || !now.Mode().IsRegular() || !os.SameFile(info, now) {
		t.sent.skipped = append(t.sent.skipped, name)
		return nil
	}
	hdr, err := t.header(name, now, "")
	if err != nil {
		return err
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.CopyBuffer(t.tw, io.LimitReader(struct{ io.Reader }{f}, hdr.Size), t.buf)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	for n < hdr.Size {
		chunk := min(hdr.Size-n, int64(len(t.buf)))
		clear(t.buf[:chunk])
		w, err := t.tw.Write(t.buf[:chunk])
		if err != nil {
			return err
		}
		n += int64(w)
	}
	t.sent.files++
	t.sent.bytes += hdr.Size
	t.sent.options.Sent = append(t.sent.options.Sent, name)
	if hdr.ModTime.Unix() < t.since {
		t.sent.options.Unchanged[name] = extract.Sent{Size: hdr.Size, ModTime: hdr.ModTime.Unix(), Perm: now.Mode().Perm()}
	}
	return nil
}

func (t *tarWalk) symlink(name string, info fs.FileInfo) error {
	target, err := t.root.Readlink(name)
	if err != nil {
		t.sent.skipped = append(t.sent.skipped, name)
		return nil
	}
	hdr, err := t.header(name, info, target)
	if err != nil {
		return err
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	t.sent.links++
	t.sent.options.Sent = append(t.sent.options.Sent, name)
	return nil
}

// copyWorkdirIn fills the run volume, mounted at workdir in the created
// sibling id, with the working directory held in root, owned by the build's
// user: its numbers when known, else (a name, the image's USER) the
// engine's choice of the container's user. The engine extracts it into the
// directory above workdir, so that the top entry gives the mount point its
// owner and mode. Bounded by silence, not length: a large tree takes its
// time, a cancelled ctx ends it.
func copyWorkdirIn(ctx context.Context, api Engine, id, workdir string, root *artifactRoot, user buildUser, log zerolog.Logger) (sentTree, error) {
	started := time.Now()
	ctx, idle := newIdleBound(ctx, engineCallTimeout)
	defer idle.stop()
	pr, pw := io.Pipe()
	type walked struct {
		sent sentTree
		err  error
	}
	done := make(chan walked, 1)
	go func() {
		bw := bufio.NewWriterSize(pw, copyBufferSize)
		sent, err := tarWorkdir(bw, root.root, filepath.Base(workdir), user.UID, user.GID, started)
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
		done <- walked{sent, err}
	}()
	err := api.CopyToContainer(ctx, id, filepath.Dir(workdir), idle.reader(pr), container.CopyToContainerOptions{CopyUIDGID: user.UID < 0})
	pr.CloseWithError(errors.New("the engine stopped reading")) // ends a walk the engine gave up on
	w := <-done
	if w.err != nil && !errors.Is(w.err, io.ErrClosedPipe) && err == nil {
		err = w.err
	}
	if err != nil {
		return w.sent, fmt.Errorf("copying the working directory %s to the engine: %w", workdir, idle.explain(api.DaemonHost(), "the working directory's copy", err))
	}
	if len(w.sent.skipped) > 0 {
		log.Warn().Int("entries", len(w.sent.skipped)).Strs("names", firstNames(w.sent.skipped)).Msg("not copied to the build: sockets, fifos and devices (or entries that changed while read)")
	}
	log.Info().Int("files", w.sent.files).Int("directories", w.sent.dirs).Int("links", w.sent.links).Str("size", humanBytes(w.sent.bytes)).
		Stringer("took", time.Since(started).Round(time.Millisecond)).
		Msgf("copied the working directory in: %d files, %s, %s", w.sent.files, humanBytes(w.sent.bytes), time.Since(started).Round(100*time.Millisecond))
	return w.sent, nil
}

// copyWorkdirBack copies the working directory out of the exited sibling
// id into the directory held in root, with the artifacts' checks, and
// applies the build's deletions (see extract.Mirror). Run as root,
// sibling-run gives what it writes the working directory's owner.
func copyWorkdirBack(ctx context.Context, api Engine, id, workdir string, root *artifactRoot, sent sentTree, log zerolog.Logger) error {
	started := time.Now()
	if err := root.check(); err != nil {
		return fmt.Errorf("refusing to copy the working directory back: %w", err)
	}
	opts := sent.options
	if os.Geteuid() == 0 {
		if info, err := root.root.Stat("."); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				opts.Owner = &[2]int{int(st.Uid), int(st.Gid)}
			}
		}
	}
	ctx, idle := newIdleBound(ctx, engineCallTimeout)
	defer idle.stop()
	stream, _, err := api.CopyFromContainer(ctx, id, workdir)
	if err != nil {
		return fmt.Errorf("copying the working directory back from the engine: %w", idle.explain(api.DaemonHost(), "the working directory", err))
	}
	defer stream.Close()
	stats, err := extract.Mirror(bufio.NewReaderSize(idle.reader(stream), extract.BufferSize), root.root, opts, log)
	if err != nil {
		return fmt.Errorf("copying the working directory back: %w (the build's deletions were not applied)", idle.explain(api.DaemonHost(), "the working directory", err))
	}
	took := time.Since(started).Round(100 * time.Millisecond)
	log.Info().Int("entries", stats.Entries).Int("unchanged", stats.Unchanged).Str("size", humanBytes(stats.Bytes)).Int("removed", stats.Removed).
		Stringer("took", time.Since(started).Round(time.Millisecond)).
		Msgf("copied the working directory back: %d entries (%d files unchanged), %s written, %d removed, %s", stats.Entries, stats.Unchanged, humanBytes(stats.Bytes), stats.Removed, took)
	if stats.NotRemoved > 0 {
		log.Warn().Int("entries", stats.NotRemoved).Msg("entries the build deleted are still in the working directory: directories that hold something new, or a removal failed")
	}
	return nil
}

// firstNames is at most afterBuildShown of names, for a log line.
func firstNames(names []string) []string {
	return names[:min(len(names), afterBuildShown)]
}

// humanBytes is n in the largest binary unit that leaves at least 1.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
