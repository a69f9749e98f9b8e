package runner

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBuildSpecLimits(t *testing.T) {
	for _, tt := range []struct {
		name      string
		pids      int64
		shm       int64
		tmpfs     []TmpfsSpec
		wantPids  *int64
		wantShm   int64
		wantTmpfs map[string]string
	}{
		{name: "none"},
		{name: "pids", pids: 100, wantPids: ptr(int64(100))},
		{name: "pids unlimited", pids: -1, wantPids: ptr(int64(-1))},
		{name: "shm", shm: 256 << 20, wantShm: 256 << 20},
		{name: "tmpfs", tmpfs: []TmpfsSpec{{Path: "/tmp"}, {Path: "/run/cache", Options: "size=64m,noexec"}},
			wantTmpfs: map[string]string{"/tmp": "", "/run/cache": "size=64m,noexec"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			cfg.PidsLimit, cfg.ShmSize, cfg.Tmpfs = tt.pids, tt.shm, tt.tmpfs
			sp, err := buildSpec(cfg, nil, bindShare, testOwner.labels())
			if err != nil {
				t.Fatal(err)
			}
			h := sp.HostConfig
			if !reflect.DeepEqual(h.PidsLimit, tt.wantPids) {
				t.Errorf("PidsLimit = %v, want %v", h.PidsLimit, tt.wantPids)
			}
			if h.ShmSize != tt.wantShm {
				t.Errorf("ShmSize = %d, want %d", h.ShmSize, tt.wantShm)
			}
			if !reflect.DeepEqual(h.Tmpfs, tt.wantTmpfs) {
				t.Errorf("Tmpfs = %v, want %v", h.Tmpfs, tt.wantTmpfs)
			}
		})
	}
}

func TestBuildSpecRefusesBadLimits(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Config)
		says string
	}{
		{"pids below -1", func(c *Config) { c.PidsLimit = -2 }, "--pids-limit -2"},
		{"shm negative", func(c *Config) { c.ShmSize = -1 }, "--shm-size"},
		{"tmpfs relative", func(c *Config) { c.Tmpfs = []TmpfsSpec{{Path: "tmp"}} }, `--tmpfs "tmp"`},
		{"tmpfs not clean", func(c *Config) { c.Tmpfs = []TmpfsSpec{{Path: "/tmp/"}} }, `--tmpfs "/tmp/"`},
		{"tmpfs root", func(c *Config) { c.Tmpfs = []TmpfsSpec{{Path: "/"}} }, "--tmpfs"},
		{"tmpfs twice", func(c *Config) { c.Tmpfs = []TmpfsSpec{{Path: "/tmp"}, {Path: "/tmp", Options: "size=1m"}} }, "a second time"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "--timeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := baseConfig()
			tt.edit(&cfg)
			_, err := buildSpec(cfg, nil, bindShare, testOwner.labels())
			if err == nil || !strings.Contains(err.Error(), tt.says) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v, want one line naming %s", err, tt.says)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
