package runner

import (
	"math"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/mount"
)

// engineName is the rule the engine applies to container names.
var engineName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func strPtr(s string) *string { return &s }

var testOwner = owner{ID: "host:agent-7", PID: 4242, Start: "987654", Boot: "158e329c-af27-483d-bf5c-32e19fd3102b"}

// baseConfig is a Config as the command line fills it with its defaults.
func baseConfig() Config {
	return Config{
		Image:     "maven:3.9-eclipse-temurin-21",
		Command:   []string{"mvn", "-B", "verify"},
		Init:      true,
		LogDriver: "none",
		Pull:      PullMissing,
	}
}

const testWorkdir = "/home/bamboo/xml-data/build-dir/PROJ-PLAN-JOB1"

var bindShare = mountPlan{Workdir: testWorkdir, Mounts: []mount.Mount{{Type: mount.TypeBind, Source: testWorkdir, Target: testWorkdir}}}

// The sibling gets exactly the plan's mounts: never another container's
// volumes, never a bind it was not planned to have.
func TestBuildSpecMounts(t *testing.T) {
	socket := mount.Mount{Type: mount.TypeBind, Source: "/run/docker.sock", Target: "/var/run/docker.sock"}
	tests := []struct {
		name string
		plan mountPlan
	}{
		{"bind on a host", bindShare},
		{"a volume's directory as a bind", mountPlan{Workdir: testWorkdir, Mounts: []mount.Mount{
			{Type: mount.TypeBind, Source: "/var/lib/docker/volumes/0f3e/_data/PROJ-PLAN-JOB1", Target: testWorkdir}}}},
		{"a volume's subpath", mountPlan{Workdir: testWorkdir, Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Source: "0f3e", Target: testWorkdir, VolumeOptions: &mount.VolumeOptions{Subpath: "PROJ-PLAN-JOB1", NoCopy: true}}}}},
		{"with the engine", mountPlan{Workdir: testWorkdir, Mounts: []mount.Mount{bindShare.Mounts[0], socket},
			GroupAdd: []string{"998"}, Env: []string{"DOCKER_HOST=unix:///var/run/docker.sock"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := buildSpec(baseConfig(), []string{"A=1"}, tt.plan, testOwner.labels())
			if err != nil {
				t.Fatal(err)
			}
			if got := sp.HostConfig.Mounts; !reflect.DeepEqual(got, tt.plan.Mounts) {
				t.Errorf("Mounts = %+v, want %+v", got, tt.plan.Mounts)
			}
			if sp.HostConfig.Binds != nil || sp.HostConfig.VolumesFrom != nil {
				t.Errorf("Binds = %q, VolumesFrom = %q; want neither", sp.HostConfig.Binds, sp.HostConfig.VolumesFrom)
			}
			if got := []string(sp.HostConfig.GroupAdd); !reflect.DeepEqual(got, tt.plan.GroupAdd) {
				t.Errorf("GroupAdd = %q, want %q", got, tt.plan.GroupAdd)
			}
			// The plan's variables come first, so that -e can override them.
			if want := append(append([]string(nil), tt.plan.Env...), "A=1"); !reflect.DeepEqual(sp.Config.Env, want) {
				t.Errorf("Env = %q, want %q", sp.Config.Env, want)
			}
			if got := sp.Config.WorkingDir; got != testWorkdir {
				t.Errorf("WorkingDir = %q, want %q", got, testWorkdir)
			}
		})
	}
}

func TestBuildSpecRefusesTmpfsOverTheWorkdir(t *testing.T) {
	for _, dir := range []string{testWorkdir, "/home/bamboo", "/home"} {
		cfg := baseConfig()
		cfg.Tmpfs = []TmpfsSpec{{Path: dir, Options: "size=1m"}}
		if _, err := buildSpec(cfg, nil, bindShare, testOwner.labels()); err == nil || !strings.Contains(err.Error(), "hide") {
			t.Errorf("--tmpfs %s: err = %v, want a refusal that says it would hide the working directory", dir, err)
		}
	}
	cfg := baseConfig()
	cfg.Tmpfs = []TmpfsSpec{{Path: testWorkdir + "/tmp"}, {Path: "/tmp"}}
	if _, err := buildSpec(cfg, nil, bindShare, testOwner.labels()); err != nil {
		t.Errorf("--tmpfs inside the working directory and beside it: %v", err)
	}
}

func TestBuildSpecPassesConfig(t *testing.T) {
	cfg := baseConfig()
	cfg.User = "1000:1000"
	cfg.Network = "ci-net"
	cfg.TTY = true
	env := []string{"bamboo_buildResultKey=PROJ-PLAN-JOB1-42", "A=1"}
	sp, err := buildSpec(cfg, env, bindShare, testOwner.labels())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field     string
		got, want any
	}{
		{"Image", sp.Config.Image, cfg.Image},
		{"Cmd", []string(sp.Config.Cmd), cfg.Command},
		{"Env", sp.Config.Env, env},
		{"User", sp.Config.User, "1000:1000"},
		{"NetworkMode", string(sp.HostConfig.NetworkMode), "ci-net"},
		{"Tty", sp.Config.Tty, true},
		{"AttachStdout", sp.Config.AttachStdout, true},
		{"AttachStderr", sp.Config.AttachStderr, true},
		{"LogConfig.Type", sp.HostConfig.LogConfig.Type, "none"},
		{"Networking set", sp.Networking != nil, true},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %#v, want %#v", tt.field, tt.got, tt.want)
		}
	}
}

func TestBuildSpecCommandDefaults(t *testing.T) {
	cfg := baseConfig()
	cfg.Command = nil
	cfg.Network = ""
	sp, err := buildSpec(cfg, nil, bindShare, testOwner.labels())
	if err != nil {
		t.Fatal(err)
	}
	// nil leaves the image's CMD in force; without --network the build
	// joins the builds' network, apart from the engine's default bridge.
	if sp.Config.Cmd != nil {
		t.Errorf("Cmd = %q, want nil", sp.Config.Cmd)
	}
	if got := sp.HostConfig.NetworkMode; got != BuildsNetwork {
		t.Errorf("NetworkMode = %q, want %q", got, BuildsNetwork)
	}
	cfg.Network = "bridge"
	if sp, _ = buildSpec(cfg, nil, bindShare, testOwner.labels()); sp.HostConfig.NetworkMode != "bridge" {
		t.Errorf("--network bridge: NetworkMode = %q, want bridge", sp.HostConfig.NetworkMode)
	}
}

func TestBuildSpecInit(t *testing.T) {
	for _, init := range []bool{true, false} {
		cfg := baseConfig()
		cfg.Init = init
		sp, err := buildSpec(cfg, nil, bindShare, testOwner.labels())
		if err != nil {
			t.Fatal(err)
		}
		// Always a pointer: --no-init must override an engine that defaults to init.
		if sp.HostConfig.Init == nil {
			t.Fatalf("Init = nil for cfg.Init %v, want a pointer to %v", init, init)
		}
		if got := *sp.HostConfig.Init; got != init {
			t.Errorf("*Init = %v, want %v", got, init)
		}
	}
}

func TestBuildSpecLogDriver(t *testing.T) {
	for _, driver := range []string{"none", "json-file", "local", ""} {
		cfg := baseConfig()
		cfg.LogDriver = driver
		sp, err := buildSpec(cfg, nil, bindShare, testOwner.labels())
		if err != nil {
			t.Fatal(err)
		}
		if got := sp.HostConfig.LogConfig.Type; got != driver {
			t.Errorf("LogConfig.Type = %q, want %q", got, driver)
		}
	}
}

func TestBuildSpecResources(t *testing.T) {
	tests := []struct {
		memory       int64
		cpus         float64
		wantMemory   int64
		wantNanoCPUs int64
	}{
		{0, 0, 0, 0},
		{512 << 20, 0, 512 << 20, 0},
		{0, 1.5, 0, 1_500_000_000},
		// Rounded, not truncated: 1.001*1e9 is 1000999999.99... in floating point.
		{0, 1.001, 0, 1_001_000_000},
		{0, 2, 0, 2_000_000_000},
		{0, 0.5, 0, 500_000_000},
		{4 << 30, 3, 4 << 30, 3_000_000_000},
	}
	for _, tt := range tests {
		cfg := baseConfig()
		cfg.Memory = tt.memory
		cfg.CPUs = tt.cpus
		sp, err := buildSpec(cfg, nil, bindShare, testOwner.labels())
		if err != nil {
			t.Errorf("buildSpec(memory %d, cpus %v): %v", tt.memory, tt.cpus, err)
			continue
		}
		if got := sp.HostConfig.Memory; got != tt.wantMemory {
			t.Errorf("memory %d: Memory = %d, want %d", tt.memory, got, tt.wantMemory)
		}
		if got := sp.HostConfig.NanoCPUs; got != tt.wantNanoCPUs {
			t.Errorf("cpus %v: NanoCPUs = %d, want %d", tt.cpus, got, tt.wantNanoCPUs)
		}
	}
}

func TestBuildSpecEntrypoint(t *testing.T) {
	tests := []struct {
		name       string
		entrypoint *string
		want       []string
	}{
		{"unset keeps the image's", nil, nil},
		// [""] is how the engine is told to clear the image's ENTRYPOINT.
		{"empty clears the image's", strPtr(""), []string{""}},
		{"set", strPtr("sh"), []string{"sh"}},
		{"path with spaces stays one word", strPtr("/opt/my tools/run"), []string{"/opt/my tools/run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Entrypoint = tt.entrypoint
			sp, err := buildSpec(cfg, nil, bindShare, testOwner.labels())
			if err != nil {
				t.Fatal(err)
			}
			got := []string(sp.Config.Entrypoint)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Entrypoint = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestBuildSpecInteractive(t *testing.T) {
	for _, interactive := range []bool{false, true} {
		cfg := baseConfig()
		cfg.Interactive = interactive
		sp, err := buildSpec(cfg, nil, bindShare, testOwner.labels())
		if err != nil {
			t.Fatal(err)
		}
		c := sp.Config
		got := []bool{c.OpenStdin, c.StdinOnce, c.AttachStdin}
		want := []bool{interactive, interactive, interactive}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("interactive %v: OpenStdin, StdinOnce, AttachStdin = %v, want %v", interactive, got, want)
		}
	}
}

func TestBuildSpecLabels(t *testing.T) {
	ownerLabels := map[string]string{
		LabelManaged:    "true",
		LabelOwner:      "host:agent-7",
		LabelOwnerPID:   "4242",
		LabelOwnerStart: "987654",
		LabelOwnerBoot:  "158e329c-af27-483d-bf5c-32e19fd3102b",
	}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range ownerLabels {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name     string
		labels   map[string]string
		buildKey string
		keep     bool
		want     map[string]string
	}{
		{"owner labels only", nil, "", false, with(nil)},
		{"user labels merged", map[string]string{"team": "platform", "com.example.cost-centre": "42"}, "", false,
			with(map[string]string{"team": "platform", "com.example.cost-centre": "42"})},
		{"build key", nil, "PROJ-PLAN-JOB1-42", false, with(map[string]string{LabelBuildKey: "PROJ-PLAN-JOB1-42"})},
		{"keep", nil, "", true, with(map[string]string{LabelKeep: "true"})},
		{"all together", map[string]string{"team": "platform"}, "PROJ-PLAN-JOB1-42", true,
			with(map[string]string{"team": "platform", LabelBuildKey: "PROJ-PLAN-JOB1-42", LabelKeep: "true"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.Labels = tt.labels
			cfg.BuildKey = tt.buildKey
			cfg.Keep = tt.keep
			sp, err := buildSpec(cfg, nil, bindShare, testOwner.labels())
			if err != nil {
				t.Fatal(err)
			}
			if got := sp.Config.Labels; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Labels:\n got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestBuildSpecErrors(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr []string
	}{
		{"negative memory", func(c *Config) { c.Memory = -1 }, []string{"--memory of -1 bytes", "512m"}},
		{"negative cpus", func(c *Config) { c.CPUs = -1 }, []string{"--cpus -1", "number of CPUs"}},
		{"tiny negative cpus", func(c *Config) { c.CPUs = -0.001 }, []string{"--cpus", "number of CPUs"}},
		// strconv.ParseFloat accepts these; the engine would refuse them only after create.
		{"NaN cpus", func(c *Config) { c.CPUs = math.NaN() }, []string{"--cpus NaN"}},
		{"infinite cpus", func(c *Config) { c.CPUs = math.Inf(1) }, []string{"--cpus +Inf"}},
		{"cpus overflowing nanoseconds", func(c *Config) { c.CPUs = 1e10 }, []string{"--cpus"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			tt.change(&cfg)
			_, err := buildSpec(cfg, nil, bindShare, testOwner.labels())
			if err == nil {
				t.Fatal("buildSpec succeeded, want an error")
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("buildSpec error = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestBuildSpecKeepsOwnerLabels(t *testing.T) {
	// Reaping trusts these labels, so no user input may change them.
	cfg := baseConfig()
	cfg.Labels = map[string]string{"team": "platform"}
	cfg.BuildKey = "PROJ-PLAN-JOB1-42"
	sp, err := buildSpec(cfg, nil, bindShare, testOwner.labels())
	if err != nil {
		t.Fatal(err)
	}
	if got := ownerFromLabels(sp.Config.Labels); got != testOwner {
		t.Errorf("ownerFromLabels(spec labels) = %+v, want %+v", got, testOwner)
	}
}

func TestContainerName(t *testing.T) {
	tests := []struct {
		buildKey string
		want     string // the name without its random suffix
	}{
		{"", "sibling-run-"},
		{"PROJ-PLAN-JOB1-42", "sibling-run-PROJ-PLAN-JOB1-42-"},
		{"proj_plan.job-7", "sibling-run-proj_plan.job-7-"},
		{"PROJ PLAN/JOB#1 (42)", "sibling-run-PROJ-PLAN-JOB-1-42-"},
		{"  spaced  ", "sibling-run-spaced-"},
		{"--dashes--", "sibling-run-dashes-"},
		{"ÄÖÜ-été", "sibling-run-t-"},
		{"a:b@c", "sibling-run-a-b-c-"},
		{"///", "sibling-run-"},
		{"日本語", "sibling-run-"},
	}
	suffix := regexp.MustCompile(`^[0-9a-f]{6}$`)
	for _, tt := range tests {
		got := containerName(tt.buildKey)
		rest, ok := strings.CutPrefix(got, tt.want)
		if !ok || !suffix.MatchString(rest) {
			t.Errorf("containerName(%q) = %q, want %q followed by 6 hex digits", tt.buildKey, got, tt.want)
		}
		if !engineName.MatchString(got) {
			t.Errorf("containerName(%q) = %q, which the engine refuses", tt.buildKey, got)
		}
	}
}

func TestContainerNameUnique(t *testing.T) {
	// Two runs of the same build (a rerun) must not collide on the name.
	seen := map[string]bool{}
	for range 20 {
		name := containerName("PROJ-PLAN-JOB1-42")
		if seen[name] {
			t.Fatalf("containerName returned %q twice", name)
		}
		seen[name] = true
	}
}

func TestBuildSpecName(t *testing.T) {
	cfg := baseConfig()
	cfg.BuildKey = "PROJ-PLAN-JOB1-42"
	sp, err := buildSpec(cfg, nil, bindShare, testOwner.labels())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sp.Name, "sibling-run-PROJ-PLAN-JOB1-42-") || !engineName.MatchString(sp.Name) {
		t.Errorf("Name = %q, want sibling-run-PROJ-PLAN-JOB1-42-<suffix> matching %s", sp.Name, engineName)
	}
}

func FuzzContainerName(f *testing.F) {
	f.Add("PROJ-PLAN-JOB1-42")
	f.Add("")
	f.Add("-._")
	f.Add("\x00\xff日本")
	f.Fuzz(func(t *testing.T, buildKey string) {
		if got := containerName(buildKey); !engineName.MatchString(got) {
			t.Errorf("containerName(%q) = %q, which the engine refuses", buildKey, got)
		}
	})
}
