package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// ownedWorkdir is a working directory owned by 4242:4343, as an agent's
// build directory is owned by the agent's user (the tests run as root).
func ownedWorkdir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chown(dir, 4242, 4343); err != nil {
		t.Fatal(err)
	}
	return dir
}

func ownerOf(t *testing.T, path string) (int, int) {
	t.Helper()
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := info.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}

const whoAmI = `id -u; id -g; id -un; echo "$HOME ${USER-unset}"; touch "$HOME/.written" && echo home writable; mkdir -p made/deep; echo x > made/deep/file`

func TestBuildRunsAsTheWorkdirOwnerWithAHome(t *testing.T) {
	dir := ownedWorkdir(t)
	r := siblingRun(t, dir, nil, buildArgs("sh", "-c", whoAmI)...)
	if r.code != 0 {
		t.Fatalf("exit code %d; stderr:\n%s", r.code, r.stderr)
	}
	// The host knows no name for 4242, so the build's user is "build".
	if want := "4242\n4343\nbuild\n/home/build build\nhome writable\n"; r.stdout != want {
		t.Errorf("the build says:\n%s\nwant:\n%s", r.stdout, want)
	}
	for _, p := range []string{"made", "made/deep", "made/deep/file"} {
		if uid, gid := ownerOf(t, filepath.Join(dir, p)); uid != 4242 || gid != 4343 {
			t.Errorf("%s is owned by %d:%d, want 4242:4343", p, uid, gid)
		}
	}
}

// The image's /etc/passwd is remembered by image id: a second non-root run
// of the image takes it from the cache, and the build sees the same.
func TestImagePasswdIsRememberedForTheNextRun(t *testing.T) {
	dir := ownedWorkdir(t)
	cache := t.TempDir()
	for run, fromCache := range []bool{false, true} {
		r := siblingRun(t, dir, []string{"XDG_CACHE_HOME=" + cache}, buildArgs("--log-level", "debug", "sh", "-c", whoAmI)...)
		if want := "4242\n4343\nbuild\n/home/build build\nhome writable\n"; r.code != 0 || r.stdout != want {
			t.Fatalf("run %d: exit code %d, the build says:\n%s\nwant:\n%s\nstderr:\n%s", run+1, r.code, r.stdout, want, r.stderr)
		}
		if got := strings.Contains(r.stderr, "the image's /etc/passwd is known"); got != fromCache {
			t.Errorf("run %d: passwd from the cache %v, want %v; stderr:\n%s", run+1, got, fromCache, r.stderr)
		}
	}
	files, err := filepath.Glob(filepath.Join(cache, "sibling-run", "passwd", "*.json"))
	if err != nil || len(files) != 1 {
		t.Fatalf("want one remembered passwd file, got %v (%v)", files, err)
	}
	// What is remembered is the image's file alone: no line of the build's,
	// nor one an engine wrote (Podman's "container user"), which another
	// engine would then take for the image's.
	var cached struct{ Data []byte }
	raw, err := os.ReadFile(files[0])
	if err == nil {
		err = json.Unmarshal(raw, &cached)
	}
	if want := "root:x:0:0:root:/root:/bin/sh\n"; err != nil || string(cached.Data) != want {
		t.Errorf("remembered passwd = %q (%v), want the image's own %q", cached.Data, err, want)
	}
}

func TestUserFlagOverridesTheWorkdirOwner(t *testing.T) {
	for _, tc := range []struct {
		user, want string
		owner      int
	}{
		{"0:0", "0\n0\nroot\n/root root\nhome writable\n", 0},
		{"root", "0\n0\nroot\n/root root\nhome writable\n", 0},
		// busybox sets no USER, so the image's own user is root, and
		// sibling-run sets no USER variable for it.
		{"image", "0\n0\nroot\n/root unset\nhome writable\n", 0},
		{"4242:4343", "4242\n4343\nbuild\n/home/build build\nhome writable\n", 4242},
	} {
		t.Run(tc.user, func(t *testing.T) {
			dir := ownedWorkdir(t)
			r := siblingRun(t, dir, nil, buildArgs("--user", tc.user, "sh", "-c", whoAmI)...)
			if r.code != 0 || r.stdout != tc.want {
				t.Errorf("--user %s: exit %d, the build says:\n%s\nwant:\n%s\nstderr:\n%s", tc.user, r.code, r.stdout, tc.want, r.stderr)
			}
			if uid, _ := ownerOf(t, filepath.Join(dir, "made/deep/file")); uid != tc.owner {
				t.Errorf("--user %s: the build's file is owned by uid %d, want %d", tc.user, uid, tc.owner)
			}
		})
	}
}

func TestUserVariableSetWithEnvWins(t *testing.T) {
	r := siblingRun(t, ownedWorkdir(t), nil, buildArgs("-e", "USER=mine", "-e", "HOME=/tmp", "sh", "-c", `echo "$USER $HOME"`)...)
	if r.code != 0 || r.stdout != "mine /tmp\n" {
		t.Errorf("exit %d, the build says %q; want %q", r.code, r.stdout, "mine /tmp\n")
	}
}

// The new USER entry and the owner's uid show in the spec and the debug log;
// a secret's value shows in neither.
func TestSecretsStayMaskedBesideTheUserEntries(t *testing.T) {
	dir := ownedWorkdir(t)
	args := []string{"-e", "MY_PASSWORD=s3cr3t-value", "--artifact", "/tmp/out"}
	dry := siblingRun(t, dir, nil, buildArgs(append([]string{"--dry-run"}, append(args, "true")...)...)...)
	var spec struct {
		Config struct {
			Env  []string
			User string
		}
	}
	if err := json.Unmarshal([]byte(dry.stdout), &spec); err != nil {
		t.Fatalf("dry run printed no JSON spec: %v\n%s", err, dry.stdout)
	}
	if spec.Config.User != "4242:4343" || !contains(spec.Config.Env, "USER=build") || !contains(spec.Config.Env, "MY_PASSWORD=********") {
		t.Errorf("spec user %q, env %v; want 4242:4343, USER=build and the masked secret", spec.Config.User, spec.Config.Env)
	}
	run := siblingRun(t, dir, nil, buildArgs(append([]string{"--log-level", "debug"}, append(args, "sh", "-c", "mkdir /tmp/out; echo $MY_PASSWORD > /tmp/out/seen")...)...)...)
	if run.code != 0 || !strings.Contains(run.stderr, "MY_PASSWORD=********") {
		t.Errorf("exit %d; the debug log lacks the masked entry:\n%s", run.code, run.stderr)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "out", "seen")); string(got) != "s3cr3t-value\n" {
		t.Errorf("the build got %q, want the real value", got)
	}
	if strings.Contains(dry.stdout+dry.stderr+run.stdout+run.stderr, "s3cr3t-value") {
		t.Errorf("sibling-run printed the secret's value:\n%s\n%s", dry.stdout, run.stderr)
	}
}
