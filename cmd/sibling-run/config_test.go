package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"sibling-run/runner"
)

// configOf parses a run's command line and maps it to a runner.Config.
func configOf(t *testing.T, args ...string) (runner.Config, error) {
	t.Helper()
	var c cli
	parser, err := newParser(&c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parser.Parse(withRunNamed(parser, args)); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return c.Run.config()
}

func TestConfigDefaults(t *testing.T) {
	t.Setenv("bamboo_buildKey", "PLAN-JOB")
	t.Setenv("bamboo_buildResultKey", "PLAN-JOB-7")
	t.Setenv("bamboo_build_working_directory", "/agent/xml-data/build-dir/PLAN-JOB")
	cfg, err := configOf(t, "--image", "golang:1.22", "make", "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"Image", cfg.Image, "golang:1.22"},
		{"Command", cfg.Command, []string{"make", "test"}},
		{"Workdir", cfg.Workdir, "/agent/xml-data/build-dir/PLAN-JOB"},
		{"CacheKey", cfg.CacheKey, "PLAN-JOB"},
		{"BuildKey", cfg.BuildKey, "PLAN-JOB-7"},
		{"Pull", cfg.Pull, runner.PullMissing},
		{"PullRetries", cfg.PullRetries, 3},
		{"Init", cfg.Init, true},
		{"StopTimeout", cfg.StopTimeout, 10 * time.Second},
		{"LogDriver", cfg.LogDriver, "none"},
		{"PassEnv", cfg.PassEnv, []string{"bamboo_"}},
		{"ArtifactMaxSize", cfg.ArtifactMaxSize, int64(4 << 30)},
		{"ServiceTimeout", cfg.ServiceTimeout, 60 * time.Second},
		{"Memory", cfg.Memory, int64(0)},
		{"Timeout", cfg.Timeout, time.Duration(0)},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	if len(cfg.Environ) == 0 {
		t.Error("Environ is empty; it carries sibling-run's environment")
	}
}

func TestConfigWorkdirFallsBackToTheCurrentDirectory(t *testing.T) {
	t.Setenv("bamboo_build_working_directory", "")
	cfg, err := configOf(t, "--image", "img")
	wd, _ := os.Getwd()
	if err != nil || cfg.Workdir != wd {
		t.Errorf("Workdir = %q, %v; want %q", cfg.Workdir, err, wd)
	}
	cfg, _ = configOf(t, "-w", "/src", "--image", "img")
	if cfg.Workdir != "/src" {
		t.Errorf("-w: Workdir = %q", cfg.Workdir)
	}
}

func TestConfigFlags(t *testing.T) {
	cfg, err := configOf(t, "--image", "img",
		"-m", "512m", "--shm-size", "1g", "--cpus", "1.5", "--pids-limit", "64", "--timeout", "5m",
		"-v", "data:/data:ro", "--cache", "/root/.cache:shared", "-l", "team=a", "--tmpfs", "/scratch:size=64m",
		"--service", "postgres:16=db", "--artifact", "/out/report:reports", "--artifact-max-size", "500m",
		"--no-init", "--pull", "never", "--keep", "--dry-run", "-u", "1000:1000", "--network", "ci",
		"-e", "A=1", "--pass-env", "", "--secret-names", "apikey", "--keep-escaping-links",
		"--", "make")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"Memory", cfg.Memory, int64(512 << 20)},
		{"ShmSize", cfg.ShmSize, int64(1 << 30)},
		{"CPUs", cfg.CPUs, 1.5},
		{"PidsLimit", cfg.PidsLimit, int64(64)},
		{"Timeout", cfg.Timeout, 5 * time.Minute},
		{"Volumes", len(cfg.Volumes), 1},
		{"Caches", cfg.Caches, []runner.CacheSpec{{Path: "/root/.cache", Shared: true}}},
		{"Labels", cfg.Labels, map[string]string{"team": "a"}},
		{"Tmpfs", cfg.Tmpfs, []runner.TmpfsSpec{{Path: "/scratch", Options: "size=64m"}}},
		{"Services", cfg.Services, []runner.ServiceSpec{{Image: "postgres:16", Alias: "db"}}},
		{"Artifacts", cfg.Artifacts, []runner.ArtifactSpec{{Src: "/out/report", Dest: "reports"}}},
		{"ArtifactMaxSize", cfg.ArtifactMaxSize, int64(500 << 20)},
		{"Init", cfg.Init, false},
		{"Pull", cfg.Pull, runner.PullNever},
		{"Keep", cfg.Keep, true},
		{"DryRun", cfg.DryRun, true},
		{"User", cfg.User, "1000:1000"},
		{"Network", cfg.Network, "ci"},
		{"Env", cfg.Env, []string{"A=1"}},
		{"SecretNames", cfg.SecretNames, []string{"apikey"}},
		{"KeepEscapingLinks", cfg.KeepEscapingLinks, true},
		{"Command", cfg.Command, []string{"make"}}, // the -- is sibling-run's
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	if v := cfg.Volumes[0]; v.Source != "data" || v.Bind {
		t.Errorf("Volumes = %+v", cfg.Volumes)
	}
}

// Each flag that needs parsing refuses a bad value, naming the flag.
func TestConfigRefusesBadValues(t *testing.T) {
	for _, args := range [][]string{
		{"-m", "lots"},
		{"--shm-size=-1"},
		{"--artifact-max-size", "big"},
		{"-l", "=x"},
		{"--tmpfs", "relative"},
		{"--service", "=db"},
		{"--artifact", "relative/path"},
		{"--cache", "/"},
		{"-v", "nocolon"},
	} {
		_, err := configOf(t, append([]string{"--image", "img"}, args...)...)
		if err == nil {
			t.Errorf("%q: no error", args)
			continue
		}
		flag, _, _ := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		if len(flag) > 1 && !strings.Contains(err.Error(), flag) {
			t.Errorf("%q: %v does not name the flag", args, err)
		}
	}
}
