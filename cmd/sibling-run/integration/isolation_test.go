package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"

	"sibling-run/runner"
)

// The isolation tests play the attacker of issue 12: a build whose code is
// untrusted, run by an agent container that has the engine's socket, an
// agent home with a token only its user may read, and a data volume that
// holds two plans' directories. The build must see its own working directory
// and nothing else, unless --docker gives it the engine.

// The paths of the agent's world, as the agent sees them.
const (
	isoBuilds = "/builds"
	isoHome   = "/home/agent"
	isoToken  = isoHome + "/token"
	isoPlan   = isoBuilds + "/PLAN1"    // this build's working directory, root's
	isoOther  = isoBuilds + "/PLAN2"    // another plan's, with a secret in it
	isoNoRoot = isoBuilds + "/PLAN-UID" // a working directory of uid 4242
)

// isoProbe is a build that reports everything it can see that it should not,
// as "SEES <path>" lines, and what is in the volume's root as "IN-BUILDS".
const isoProbe = `sh -c 'cat in.txt; echo from-sibling > out.txt; ` +
	`for p in /var/run/docker.sock /run/docker.sock ` + isoHome + ` ` + isoToken + ` ` + isoOther + ` ` + isoOther + `/secret.txt; do test -e $p && echo "SEES $p"; done; ` +
	`ls -A ` + isoBuilds + ` | sed "s/^/IN-BUILDS /"; exit 7'`

// isoWorld is the agent's world: the data volume, the agent home and a data
// container that holds the data volume as bamboo-agent-data.N does.
type isoWorld struct {
	data, home string // named volumes
	dataCtr    string // a data container with data at isoBuilds
}

func newIsoWorld(t *testing.T) isoWorld {
	t.Helper()
	w := isoWorld{data: labelledVolume(t), home: labelledVolume(t)}
	fill := strings.Join([]string{
		"mkdir -p " + isoPlan + " " + isoOther + " " + isoNoRoot,
		"echo from-agent > " + isoPlan + "/in.txt",
		"echo from-agent > " + isoNoRoot + "/in.txt",
		"chown -R 4242:4242 " + isoNoRoot,
		"echo secret-of-plan2 > " + isoOther + "/secret.txt",
		"echo agent-token > " + isoToken, "chmod 600 " + isoToken,
		// Links a build of the old design could have planted in the volume.
		"ln -s PLAN2 " + isoBuilds + "/PLAN3",
		"ln -s /etc " + isoBuilds + "/PLAN4",
		"ln -s .. " + isoPlan + "/up",
	}, " && ")
	out, code := runContainer(t, &container.Config{Image: busyboxImage, Cmd: []string{"sh", "-c", fill}},
		&container.HostConfig{Mounts: w.mounts()})
	if code != 0 {
		t.Fatalf("filling the volumes: exit %d: %s", code, out)
	}
	w.dataCtr = "sibling-run-test-data-" + randomHex(4)
	ctx := context.Background()
	created, err := api.ContainerCreate(ctx, &container.Config{
		Image: busyboxImage, Cmd: []string{"true"}, Labels: map[string]string{"sibling-run-test.run": runID},
	}, &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: w.data, Target: isoBuilds}}}, nil, nil, w.dataCtr)
	if err != nil {
		t.Fatalf("creating the data container: %v", err)
	}
	// Cleanups run last-in first-out: the container goes before its volume.
	t.Cleanup(func() { _ = api.ContainerRemove(ctx, created.ID, container.RemoveOptions{Force: true}) })
	return w
}

func (w isoWorld) mounts() []mount.Mount {
	return []mount.Mount{
		{Type: mount.TypeVolume, Source: w.data, Target: isoBuilds},
		{Type: mount.TypeVolume, Source: w.home, Target: isoHome},
	}
}

// agent runs script in an agent container with the socket and the agent
// home; the builds come from the data volume itself (automatic mode) or from
// the data container (viaDataContainer).
func (w isoWorld) agent(t *testing.T, viaDataContainer bool, script string) string {
	t.Helper()
	socket, ok := strings.CutPrefix(api.DaemonHost(), "unix://")
	if !ok {
		t.Fatalf("the agent tests mount the engine's unix socket; DOCKER_HOST is %s", api.DaemonHost())
	}
	host := &container.HostConfig{Binds: []string{socket + ":/var/run/docker.sock"}, Mounts: w.mounts()}
	if viaDataContainer {
		host.Mounts = host.Mounts[1:]
		host.VolumesFrom = []string{w.dataCtr}
	}
	out, code := runContainer(t, &container.Config{Image: agentImage, Cmd: []string{"sh", "-c", script}}, host)
	if code != 0 {
		t.Fatalf("the agent exited %d:\n%s", code, out)
	}
	return out
}

// labelledVolume creates a named volume that carries testLabel and is
// removed when the test ends.
func labelledVolume(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	v, err := api.VolumeCreate(ctx, volume.CreateOptions{
		Name: "sibling-run-test-" + randomHex(6), Labels: map[string]string{"sibling-run-test.run": runID},
	})
	if err != nil {
		t.Fatalf("creating a volume: %v", err)
	}
	t.Cleanup(func() {
		if err := api.VolumeRemove(ctx, v.Name, true); err != nil {
			t.Errorf("removing volume %s: %v", v.Name, err)
		}
	})
	return v.Name
}

// Issue 12, items 1 and 2: neither the agent's socket, nor its home, nor
// another plan's directory reaches a build, in either mode of an agent.
func TestABuildInAnAgentSeesOnlyItsWorkdir(t *testing.T) {
	w := newIsoWorld(t)
	for _, tc := range []struct {
		name             string
		viaDataContainer bool
		flags            string
	}{
		{"automatic", false, ""},
		{"--volumes-from the data container", true, "--volumes-from " + w.dataCtr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := "cd " + isoPlan + " && " + agentSiblingRun(tc.flags, isoProbe) + "; echo exit=$?; echo agent sees $(cat out.txt); rm out.txt"
			out := w.agent(t, tc.viaDataContainer, script)
			for _, want := range []string{"from-agent", "IN-BUILDS PLAN1", "exit=7", "agent sees from-sibling"} {
				if !hasLine(out, want) {
					t.Errorf("the output lacks the line %q:\n%s", want, out)
				}
			}
			for _, line := range strings.Split(out, "\n") {
				if strings.HasPrefix(line, "SEES ") || strings.HasPrefix(line, "IN-BUILDS ") && line != "IN-BUILDS PLAN1" {
					t.Errorf("the build saw what it must not: %s", line)
				}
			}
		})
	}
	if left := containersWith(t, testLabel, runner.LabelManaged+"=true"); len(left) > 0 {
		t.Errorf("%d siblings left behind by the agents", len(left))
	}
}

// --docker gives a non-root build the engine's socket with the socket's
// group, so that it can use the engine; without it the same build has none.
func TestDockerGivesANonRootBuildTheEngine(t *testing.T) {
	w := newIsoWorld(t)
	gid := socketGroup(t)
	// The build runs as the working directory's owner, uid 4242, in an image
	// with sibling-run, whose reap --dry-run lists the engine's containers.
	build := `sh -c 'id -u; test -S /var/run/docker.sock && echo SOCKET; id -G | tr " " "\n" | grep -qx ` + gid +
		` && echo IN-SOCKET-GROUP; sibling-run reap --dry-run >/dev/null 2>&1 && echo ENGINE-USABLE; echo DOCKER_HOST=$DOCKER_HOST'`
	run := "sibling-run --image " + agentImage + " --label " + testLabel
	for _, tc := range []struct {
		name             string
		viaDataContainer bool
		flags            string
	}{
		{"automatic", false, ""},
		{"--volumes-from the data container", true, "--volumes-from " + w.dataCtr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			script := "cd " + isoNoRoot + " && " + run + " " + tc.flags + " --docker " + build + "; echo exit=$?; " +
				"echo without; " + run + " " + tc.flags + " " + build + "; echo exit=$?"
			out := w.agent(t, tc.viaDataContainer, script)
			with, without, _ := strings.Cut(out, "\nwithout\n")
			for _, want := range []string{"4242", "SOCKET", "IN-SOCKET-GROUP", "ENGINE-USABLE", "DOCKER_HOST=unix:///var/run/docker.sock", "exit=0"} {
				if !hasLine(with, want) {
					t.Errorf("with --docker, the output lacks the line %q:\n%s", want, with)
				}
			}
			if !strings.Contains(with, "the build can control the engine") {
				t.Errorf("with --docker, no line says the build can control the engine:\n%s", with)
			}
			for _, unwanted := range []string{"SOCKET", "IN-SOCKET-GROUP", "ENGINE-USABLE"} {
				if hasLine(without, unwanted) {
					t.Errorf("without --docker, the build printed %q:\n%s", unwanted, without)
				}
			}
			if !hasLine(without, "4242") || !hasLine(without, "exit=0") {
				t.Errorf("without --docker, the build did not run as 4242 to its end:\n%s", without)
			}
		})
	}
	if left := containersWith(t, testLabel, runner.LabelManaged+"=true"); len(left) > 0 {
		t.Errorf("%d siblings left behind by the agents", len(left))
	}
}

// A link among the working directory's components, planted in the volume,
// would make the engine share another plan's directory or the host's /etc:
// it is refused with 125, and nothing is created.
func TestALinkPlantedInTheVolumeIsRefused(t *testing.T) {
	w := newIsoWorld(t)
	var script []string
	for _, dir := range []string{isoBuilds + "/PLAN3", isoBuilds + "/PLAN4", isoPlan + "/up/PLAN2"} {
		script = append(script, "echo try "+dir, agentSiblingRun("--workdir "+dir, "echo the build ran")+"; echo exit=$?")
	}
	// As Bamboo passes it, and from a shell that followed the link.
	script = append(script,
		"bamboo_build_working_directory="+isoBuilds+"/PLAN3 "+agentSiblingRun("", "echo the build ran")+"; echo exit=$?",
		"cd "+isoBuilds+"/PLAN3 && "+agentSiblingRun("", "echo the build ran")+"; echo exit=$?")
	out := w.agent(t, false, strings.Join(script, "; "))
	if strings.Contains(out, "the build ran") {
		t.Errorf("a build ran in a linked working directory:\n%s", out)
	}
	if n := strings.Count(out, "exit=125"); n != 5 {
		t.Errorf("%d of 5 runs exited 125:\n%s", n, out)
	}
	for _, link := range []string{isoBuilds + "/PLAN3 (to PLAN2)", isoBuilds + "/PLAN4 (to /etc)", isoPlan + "/up (to ..)"} {
		if !strings.Contains(out, "symbolic link "+link) {
			t.Errorf("no refusal names the link %s:\n%s", link, out)
		}
	}
	if left := containersWith(t, testLabel, runner.LabelManaged+"=true"); len(left) > 0 {
		t.Errorf("refused runs created %d siblings", len(left))
	}
}

// On a host the build gets its working directory as a bind, and nothing
// beside it; with --docker the socket and its group too.
func TestOnAHostABuildSeesOnlyItsWorkdir(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	plan, other := filepath.Join(root, "PLAN1"), filepath.Join(root, "PLAN2")
	for _, dir := range []string{plan, other} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(plan, "in.txt"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "secret.txt"), []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(plan, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	probe := `cat in.txt; id -u; ls -A .. | sed "s/^/BESIDE /"; test -e ` + other + ` && echo SEES-OTHER; ` +
		`test -S /var/run/docker.sock && echo SOCKET; id -G | tr " " "\n" | grep -qx ` + socketGroup(t) + ` && echo IN-SOCKET-GROUP; true`

	r := siblingRun(t, plan, nil, buildArgs("--", "sh", "-c", probe)...)
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"from-host", "4242", "BESIDE PLAN1"} {
		if !hasLine(r.stdout, want) {
			t.Errorf("the output lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, unwanted := range []string{"BESIDE PLAN2", "SEES-OTHER", "SOCKET", "IN-SOCKET-GROUP"} {
		if hasLine(r.stdout, unwanted) {
			t.Errorf("the build printed %q:\n%s", unwanted, r.stdout)
		}
	}

	r = siblingRun(t, plan, nil, buildArgs("--docker", "--", "sh", "-c", probe)...)
	if r.code != 0 || !hasLine(r.stdout, "SOCKET") || !hasLine(r.stdout, "IN-SOCKET-GROUP") || hasLine(r.stdout, "SEES-OTHER") {
		t.Errorf("with --docker: exit %d, want the socket and its group and still no other plan:\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "the build can control the engine") {
		t.Errorf("with --docker, no line says the build can control the engine:\n%s", r.stderr)
	}
}

// On a host, a link in a directory that a build's user can write is refused;
// one in a directory only root can write is the administrator's and followed.
func TestOnAHostALinkABuildCouldPlantIsRefused(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	plan, other := filepath.Join(root, "PLAN1"), filepath.Join(root, "PLAN2")
	for _, dir := range []string{plan, other} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(plan, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	planted := filepath.Join(plan, "sub")
	if err := os.Symlink(other, planted); err != nil {
		t.Fatal(err)
	}
	admins := filepath.Join(root, "current")
	if err := os.Symlink(plan, admins); err != nil {
		t.Fatal(err)
	}

	r := siblingRun(t, root, nil, buildArgs("--workdir", planted, "--", "echo", "the build ran")...)
	if r.code != 125 || strings.Contains(r.stdout, "the build ran") || !strings.Contains(r.stderr, "symbolic link "+planted) {
		t.Errorf("a planted link: exit %d, want 125 naming %s:\n%s\n%s", r.code, planted, r.stdout, r.stderr)
	}
	r = siblingRun(t, root, nil, buildArgs("--workdir", admins, "--", "pwd")...)
	if r.code != 0 || !hasLine(r.stdout, plan) {
		t.Errorf("root's own link: exit %d, want 0 and the build in %s:\n%s\n%s", r.code, plan, r.stdout, r.stderr)
	}
	if left := containersWith(t, testLabel, runner.LabelManaged+"=true"); len(left) > 0 {
		t.Errorf("%d siblings left behind", len(left))
	}
}

// sibling-run uses the mounts of the container it finds itself in only when
// that container's hostname is its own; an agent whose hostname cannot
// confirm it (here it shares the host's, --uts host) is refused with 125
// rather than risk a stranger's volumes.
func TestAContainerThatIsNotConfirmedAsOursIsNotUsed(t *testing.T) {
	w := newIsoWorld(t)
	socket := strings.TrimPrefix(api.DaemonHost(), "unix://")
	script := "cd " + isoPlan + " && " + agentSiblingRun("", "echo the build ran") + "; echo exit=$?"
	out, code := runContainer(t, &container.Config{Image: agentImage, Cmd: []string{"sh", "-c", script}},
		&container.HostConfig{Binds: []string{socket + ":/var/run/docker.sock"}, Mounts: w.mounts(), UTSMode: "host"})
	if code != 0 || !hasLine(out, "exit=125") || strings.Contains(out, "the build ran") {
		t.Fatalf("agent exited %d; want exit=125 and no build:\n%s", code, out)
	}
	for _, says := range []string{"refusing to share its mounts", "--uts host", "--volumes-from"} {
		if !strings.Contains(out, says) {
			t.Errorf("the refusal does not say %q:\n%s", says, out)
		}
	}
	if left := containersWith(t, testLabel, runner.LabelManaged+"=true"); len(left) > 0 {
		t.Errorf("a refused run created %d siblings", len(left))
	}
}
