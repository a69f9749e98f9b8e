package runner

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"sibling-run/runner/internal/extract"
)

// After the build the agent reads the working directory as its own user:
// artifact definitions and test parsers follow symbolic links and open
// whatever is named like a report. The pass here removes what the build left
// to lead that reader elsewhere, before sibling-run exits.

// afterBuildShown bounds the names the after-build warning shows.
const afterBuildShown = 5

// afterBuildMaxDepth bounds how deep the pass descends. An entry deeper than
// this has a path longer than PATH_MAX (4096 bytes: each level takes at
// least two), which no reader can open by its path.
const afterBuildMaxDepth = 2048

// afterBuildTimeout bounds the pass: a 100,000-entry tree takes well under a
// second, so a pass that takes this long meets a hung or enormous file
// system, and the warning says what was not walked.
const afterBuildTimeout = 2 * time.Minute

// afterBuild is one pass over the held working directory.
type afterBuild struct {
	workdir           string // the path the agent reads it at
	pathHeld          bool   // the path still leads to the held directory
	keepEscapingLinks bool
	deadline          time.Time
	uid               int

	links, special, setid int      // escaping links removed; fifos, sockets, devices removed; set-id bits cleared
	names                 []string // the first of those, relative to the working directory
	failed                int      // entries left as they were because a change failed
	failedNames           []string
	firstFailure          error
	unwalked              int // directories not walked: unreadable, too deep, or out of time
	partials              int // partial artifact files an earlier, killed run left
}

// neutraliseWorkdir walks the working directory held in root (whose path the
// agent reads is workdir) without following a single link, and removes every
// symbolic link that leads outside it (see linkLeaves) unless
// keepEscapingLinks, every fifo, socket and device node, and clears the
// setuid and setgid bits of files. It logs one warning naming what it changed
// and what it could not, and nothing when there was nothing to change.
// A nil root is no directory to walk.
func neutraliseWorkdir(root *artifactRoot, keepEscapingLinks bool, log zerolog.Logger) {
	if root == nil {
		return
	}
	started := time.Now()
	p := &afterBuild{
		workdir:           root.path,
		keepEscapingLinks: keepEscapingLinks,
		deadline:          started.Add(afterBuildTimeout),
		uid:               os.Getuid(),
	}
	if err := root.check(); err != nil {
		// The agent reads whatever is at the path now; the held directory
		// is still the build's, so it is cleaned, and no absolute target
		// counts as inside.
		log.Warn().Str("workdir", root.path).Err(err).Msg("the working directory's path no longer leads to the directory the build used; cleaning that directory")
	} else {
		p.pathHeld = true
	}
	if info, err := root.root.Stat("."); err == nil {
		p.walk(root.root, ".", info, 0)
	}
	log.Debug().Int("links", p.links).Int("special", p.special).Int("setid", p.setid).
		Stringer("took", time.Since(started).Round(time.Millisecond)).Msg("checked the working directory after the build")
	if p.partials > 0 {
		log.Info().Str("workdir", root.path).Int("files", p.partials).Msg("removed the partial artifact files that a killed run had left")
	}
	p.report(log)
}

func (p *afterBuild) report(log zerolog.Logger) {
	if p.links+p.special+p.setid+p.failed+p.unwalked == 0 {
		return
	}
	ev := log.Warn().Str("workdir", p.workdir)
	if n := p.links + p.special + p.setid; n > 0 {
		ev = ev.Int("escaping_links_removed", p.links).Int("special_files_removed", p.special).
			Int("setid_bits_cleared", p.setid).Strs("names", p.names)
	}
	msg := "removed what the build left that would lead the agent outside the working directory or block it"
	if p.failed > 0 {
		ev = ev.Int("not_neutralised", p.failed).Strs("not_neutralised_names", p.failedNames).AnErr("reason", p.firstFailure)
		msg = "could not neutralise all the build left for the agent to follow: sibling-run (uid " +
			strconv.Itoa(p.uid) + ") may not change entries of the build's user; the agent may follow or block on those named"
	}
	if p.unwalked > 0 {
		ev = ev.Int("directories_not_checked", p.unwalked)
		if p.failed == 0 {
			msg = "could not check all of the working directory after the build; what was found was neutralised"
		}
	}
	ev.Msg(msg)
}

// walk checks the entries of dir (relative to the working directory), opened
// as root and described by info, and descends into its subdirectories.
func (p *afterBuild) walk(root *os.Root, dir string, info fs.FileInfo, depth int) {
	if depth > afterBuildMaxDepth || time.Now().After(p.deadline) {
		p.unwalked++
		return
	}
	entries, err := p.list(root, info)
	if err != nil {
		p.unwalked++
		return
	}
	for _, entry := range entries {
		name := entry.Name()
		rel := path.Join(dir, name)
		// Read in the root, the entry's information comes from an lstat
		// relative to the directory's descriptor, not from its path.
		info, err := entry.Info()
		if err != nil {
			continue // gone meanwhile
		}
		mode := info.Mode()
		switch {
		case mode.IsDir():
			sub, err := root.OpenRoot(name)
			if err != nil {
				p.unwalked++
				continue
			}
			p.walk(sub, rel, info, depth+1)
			sub.Close()
		case mode&fs.ModeSymlink != 0:
			target, err := root.Readlink(name)
			if err != nil || p.keepEscapingLinks || !linkLeaves(dir, target, p.workdir, p.pathHeld) {
				continue
			}
			if p.change(rel, root.Remove(name)) {
				p.links++
			}
		case mode&(fs.ModeNamedPipe|fs.ModeSocket|fs.ModeDevice|fs.ModeCharDevice|fs.ModeIrregular) != 0:
			if p.change(rel, root.Remove(name)) {
				p.special++
			}
		case mode.IsRegular() && strings.HasPrefix(name, extract.PartialPrefix):
			// Left by a copy that a SIGKILL cut short (this run's own are
			// renamed or removed by now), where an artifact pattern of the
			// plan would pick it up.
			if root.Remove(name) == nil {
				p.partials++
			}
		case mode&(fs.ModeSetuid|fs.ModeSetgid) != 0:
			if p.change(rel, root.Chmod(name, mode&(fs.ModePerm|fs.ModeSticky))) {
				p.setid++
			}
		}
	}
}

// list returns the entries of the directory root. A directory that its owner,
// this process's user, made unreadable or unwritable is given back the
// owner's full access first, as the artifact copy does: the agent could
// otherwise neither read nor clean what is under it, nor could this pass.
func (p *afterBuild) list(root *os.Root, info fs.FileInfo) ([]fs.DirEntry, error) {
	if info.Mode().Perm()&0o700 != 0o700 {
		if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) == p.uid {
			_ = root.Chmod(".", info.Mode()&(fs.ModePerm|fs.ModeSticky|fs.ModeSetgid)|0o700)
		}
	}
	f, err := root.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

// change counts the change to rel that ended with err, and reports whether
// it was made.
func (p *afterBuild) change(rel string, err error) bool {
	if err == nil {
		if len(p.names) < afterBuildShown {
			p.names = append(p.names, rel)
		}
		return true
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	p.failed++
	if len(p.failedNames) < afterBuildShown {
		p.failedNames = append(p.failedNames, rel)
	}
	if p.firstFailure == nil {
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err // its path is the build's name, shown in a field already
		}
		p.firstFailure = err
	}
	return false
}

// linkLeaves reports whether a symbolic link in dir, a real directory
// relative to the working directory, with the given target leads outside the
// working directory as the agent resolves it: relative to dir, or, for an
// absolute target, from "/", where the working directory is at workdir. It
// is extract.LinkStaysInside, the artifact copy's notion of outside: a target must
// climb no higher than the working directory and then only descend. An
// absolute target counts as inside only when it names a path under workdir
// and pathHeld says that workdir still leads to the directory walked.
func linkLeaves(dir, target, workdir string, pathHeld bool) bool {
	if !strings.HasPrefix(target, "/") {
		return !extract.LinkStaysInside(dir, target)
	}
	if !pathHeld {
		return true
	}
	parts := components(target)
	prefix := components(workdir)
	if len(parts) < len(prefix) {
		return true
	}
	for i, name := range prefix {
		if parts[i] != name {
			return true
		}
	}
	// The same target, relative to dir.
	depth := 0
	if dir != "." {
		depth = strings.Count(dir, "/") + 1
	}
	relative := strings.Repeat("../", depth) + strings.Join(parts[len(prefix):], "/")
	if relative == "" {
		relative = "."
	}
	return !extract.LinkStaysInside(dir, relative)
}

// components splits an absolute path into its names, leaving out what the
// kernel ignores ("//", "/./"); ".." stays, to be judged where it stands.
func components(p string) []string {
	var names []string
	for _, name := range strings.Split(p, "/") {
		if name != "" && name != "." {
			names = append(names, name)
		}
	}
	return names
}
