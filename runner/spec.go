package runner

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
)

// spec is everything the engine needs to create the sibling.
type spec struct {
	Name       string                    `json:"name"`
	Config     *container.Config         `json:"config"`
	HostConfig *container.HostConfig     `json:"hostConfig"`
	Networking *network.NetworkingConfig `json:"networkingConfig"`
	// RunVolume holds the working directory on a remote engine; nil when
	// the directory is mounted.
	RunVolume *runVolume `json:"runVolume,omitempty"`

	user      buildUser    // who the build runs as (user.go)
	artifacts artifactPlan // what to copy out after the build (artifact.go)
	caches    cachePlan    // the --cache volumes, and the lease on them (cache.go)
	check     *DirIdentity // the working directory the sibling must get, when racy (workdircheck.go)
}

// buildSpec turns a Config, the build's environment, the sibling's mounts
// and the owner's labels into the engine's structures. It talks to nobody, so
// every mistake in the flags is found before anything is created.
func buildSpec(cfg Config, env []string, mounts mountPlan, ownerLabels map[string]string) (spec, error) {
	labels := map[string]string{}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	for k, v := range ownerLabels {
		labels[k] = v
	}
	if cfg.BuildKey != "" {
		labels[LabelBuildKey] = cfg.BuildKey
	}
	if cfg.Keep {
		labels[LabelKeep] = "true"
	}

	if cfg.Memory < 0 {
		return spec{}, fmt.Errorf("--memory of %d bytes is negative; give a size like 512m or 2g, or none for no limit", cfg.Memory)
	}
	if math.IsNaN(cfg.CPUs) || cfg.CPUs < 0 || cfg.CPUs*1e9 > math.MaxInt64 {
		return spec{}, fmt.Errorf("--cpus %v is not a number of CPUs; use one like 1.5, or 0 for no limit", cfg.CPUs)
	}

	config := &container.Config{
		Image:        cfg.Image,
		Cmd:          cfg.Command,
		Env:          append(append([]string(nil), mounts.Env...), env...), // -e may override
		WorkingDir:   mounts.Workdir,
		User:         cfg.User,
		Labels:       labels,
		Tty:          cfg.TTY,
		AttachStdout: true,
		AttachStderr: true,
	}
	if cfg.Entrypoint != nil {
		// An empty --entrypoint clears the image's, as with docker run.
		config.Entrypoint = []string{*cfg.Entrypoint}
	}
	if cfg.Interactive {
		config.AttachStdin = true
		config.OpenStdin = true
		config.StdinOnce = true
	}

	init := cfg.Init
	host := &container.HostConfig{
		Mounts:      mounts.Mounts,
		GroupAdd:    mounts.GroupAdd,
		Init:        &init,
		LogConfig:   container.LogConfig{Type: cfg.LogDriver},
		NetworkMode: container.NetworkMode(buildNetwork(cfg.Network)),
		Resources: container.Resources{
			Memory:   cfg.Memory,
			NanoCPUs: int64(math.Round(cfg.CPUs * 1e9)),
		},
	}
	if err := applyLimits(cfg, host); err != nil {
		return spec{}, err
	}
	var tmpfs []string
	for dir := range host.Tmpfs {
		tmpfs = append(tmpfs, dir)
	}
	if err := checkMounts(host.Mounts, mounts.Workdir, tmpfs); err != nil {
		return spec{}, err
	}

	if mounts.RunVolume != nil {
		// The sibling's labels: reap finds the volume by its owner.
		mounts.RunVolume.Labels = withRole(labels, roleWorkdir)
	}
	return spec{
		Name:       containerName(cfg.BuildKey),
		Config:     config,
		HostConfig: host,
		Networking: &network.NetworkingConfig{},
		RunVolume:  mounts.RunVolume,
	}, nil
}

// buildNetwork is the network the build joins: the one --network names
// ("default" and "bridge" are the engine's default bridge, shared with
// everything else on the engine), else BuildsNetwork.
func buildNetwork(flag string) string {
	if flag == "" {
		return BuildsNetwork
	}
	return flag
}

// Names the engine accepts: [a-zA-Z0-9][a-zA-Z0-9_.-]+.
var nameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// containerName makes a readable, unique name, so `docker ps` shows which
// build a sibling belongs to: sibling-run-PROJ-PLAN-JOB1-42-1a2b3c.
func containerName(buildKey string) string {
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	name := "sibling-run-"
	if key := strings.Trim(nameUnsafe.ReplaceAllString(buildKey, "-"), "-"); key != "" {
		name += key + "-"
	}
	return name + hex.EncodeToString(suffix)
}
