package fakeengine

// One method per call of runner.Engine: each is recorded, then faulted or
// answered by its function.

import (
	"context"
	"io"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Ping answers with e.PingFunc, or as a live engine when that is not set:
// every run pings its engine while it waits (runner's engine watch).
func (e *Engine) Ping(ctx context.Context) (answer types.Ping, err error) {
	if err := e.enter(ctx, "Ping"); err != nil {
		return answer, err
	}
	if e.PingFunc == nil {
		return types.Ping{APIVersion: e.ClientVersion()}, nil
	}
	return e.PingFunc(ctx)
}

// ServerVersion answers with e.ServerVersionFunc.
func (e *Engine) ServerVersion(ctx context.Context) (answer types.Version, err error) {
	if err := e.enter(ctx, "ServerVersion"); err != nil {
		return answer, err
	}
	if e.ServerVersionFunc == nil {
		return answer, notSet("ServerVersion")
	}
	return e.ServerVersionFunc(ctx)
}

// Info answers with e.InfoFunc.
func (e *Engine) Info(ctx context.Context) (answer system.Info, err error) {
	if err := e.enter(ctx, "Info"); err != nil {
		return answer, err
	}
	if e.InfoFunc == nil {
		return answer, notSet("Info")
	}
	return e.InfoFunc(ctx)
}

// DiskUsage answers with e.DiskUsageFunc.
func (e *Engine) DiskUsage(ctx context.Context, options types.DiskUsageOptions) (answer types.DiskUsage, err error) {
	if err := e.enter(ctx, "DiskUsage"); err != nil {
		return answer, err
	}
	if e.DiskUsageFunc == nil {
		return answer, notSet("DiskUsage")
	}
	return e.DiskUsageFunc(ctx, options)
}

// ContainerCreate answers with e.ContainerCreateFunc.
func (e *Engine) ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, name string) (answer container.CreateResponse, err error) {
	if err := e.enter(ctx, "ContainerCreate"); err != nil {
		return answer, err
	}
	if e.ContainerCreateFunc == nil {
		return answer, notSet("ContainerCreate")
	}
	return e.ContainerCreateFunc(ctx, config, hostConfig, networkingConfig, platform, name)
}

// ContainerAttach answers with e.ContainerAttachFunc.
func (e *Engine) ContainerAttach(ctx context.Context, id string, options container.AttachOptions) (answer types.HijackedResponse, err error) {
	if err := e.enter(ctx, "ContainerAttach"); err != nil {
		return answer, err
	}
	if e.ContainerAttachFunc == nil {
		return answer, notSet("ContainerAttach")
	}
	return e.ContainerAttachFunc(ctx, id, options)
}

// ContainerStart answers with e.ContainerStartFunc.
func (e *Engine) ContainerStart(ctx context.Context, id string, options container.StartOptions) error {
	if err := e.enter(ctx, "ContainerStart"); err != nil {
		return err
	}
	if e.ContainerStartFunc == nil {
		return notSet("ContainerStart")
	}
	return e.ContainerStartFunc(ctx, id, options)
}

// ContainerKill answers with e.ContainerKillFunc.
func (e *Engine) ContainerKill(ctx context.Context, id, signal string) error {
	if err := e.enter(ctx, "ContainerKill"); err != nil {
		return err
	}
	if e.ContainerKillFunc == nil {
		return notSet("ContainerKill")
	}
	return e.ContainerKillFunc(ctx, id, signal)
}

// ContainerResize answers with e.ContainerResizeFunc.
func (e *Engine) ContainerResize(ctx context.Context, id string, options container.ResizeOptions) error {
	if err := e.enter(ctx, "ContainerResize"); err != nil {
		return err
	}
	if e.ContainerResizeFunc == nil {
		return notSet("ContainerResize")
	}
	return e.ContainerResizeFunc(ctx, id, options)
}

// ContainerInspect answers with e.ContainerInspectFunc.
func (e *Engine) ContainerInspect(ctx context.Context, id string) (answer container.InspectResponse, err error) {
	if err := e.enter(ctx, "ContainerInspect"); err != nil {
		return answer, err
	}
	if e.ContainerInspectFunc == nil {
		return answer, notSet("ContainerInspect")
	}
	return e.ContainerInspectFunc(ctx, id)
}

// ContainerList answers with e.ContainerListFunc.
func (e *Engine) ContainerList(ctx context.Context, options container.ListOptions) (answer []container.Summary, err error) {
	if err := e.enter(ctx, "ContainerList"); err != nil {
		return answer, err
	}
	if e.ContainerListFunc == nil {
		return answer, notSet("ContainerList")
	}
	return e.ContainerListFunc(ctx, options)
}

// ContainerLogs answers with e.ContainerLogsFunc.
func (e *Engine) ContainerLogs(ctx context.Context, id string, options container.LogsOptions) (answer io.ReadCloser, err error) {
	if err := e.enter(ctx, "ContainerLogs"); err != nil {
		return answer, err
	}
	if e.ContainerLogsFunc == nil {
		return answer, notSet("ContainerLogs")
	}
	return e.ContainerLogsFunc(ctx, id, options)
}

// ContainerRemove answers with e.ContainerRemoveFunc.
func (e *Engine) ContainerRemove(ctx context.Context, id string, options container.RemoveOptions) error {
	if err := e.enter(ctx, "ContainerRemove"); err != nil {
		return err
	}
	if e.ContainerRemoveFunc == nil {
		return notSet("ContainerRemove")
	}
	return e.ContainerRemoveFunc(ctx, id, options)
}

// CopyToContainer answers with e.CopyToContainerFunc.
func (e *Engine) CopyToContainer(ctx context.Context, id, path string, content io.Reader, options container.CopyToContainerOptions) error {
	if err := e.enter(ctx, "CopyToContainer"); err != nil {
		return err
	}
	if e.CopyToContainerFunc == nil {
		return notSet("CopyToContainer")
	}
	return e.CopyToContainerFunc(ctx, id, path, content, options)
}

// ImageInspect answers with e.ImageInspectFunc.
func (e *Engine) ImageInspect(ctx context.Context, ref string, options ...client.ImageInspectOption) (answer image.InspectResponse, err error) {
	if err := e.enter(ctx, "ImageInspect"); err != nil {
		return answer, err
	}
	if e.ImageInspectFunc == nil {
		return answer, notSet("ImageInspect")
	}
	return e.ImageInspectFunc(ctx, ref, options...)
}

// ImagePull answers with e.ImagePullFunc.
func (e *Engine) ImagePull(ctx context.Context, ref string, options image.PullOptions) (answer io.ReadCloser, err error) {
	if err := e.enter(ctx, "ImagePull"); err != nil {
		return answer, err
	}
	if e.ImagePullFunc == nil {
		return answer, notSet("ImagePull")
	}
	return e.ImagePullFunc(ctx, ref, options)
}

// NetworkCreate answers with e.NetworkCreateFunc.
func (e *Engine) NetworkCreate(ctx context.Context, name string, options network.CreateOptions) (answer network.CreateResponse, err error) {
	if err := e.enter(ctx, "NetworkCreate"); err != nil {
		return answer, err
	}
	if e.NetworkCreateFunc == nil {
		return answer, notSet("NetworkCreate")
	}
	return e.NetworkCreateFunc(ctx, name, options)
}

// NetworkInspect answers with e.NetworkInspectFunc.
func (e *Engine) NetworkInspect(ctx context.Context, name string, options network.InspectOptions) (answer network.Inspect, err error) {
	if err := e.enter(ctx, "NetworkInspect"); err != nil {
		return answer, err
	}
	if e.NetworkInspectFunc == nil {
		return answer, notSet("NetworkInspect")
	}
	return e.NetworkInspectFunc(ctx, name, options)
}

// NetworkList answers with e.NetworkListFunc.
func (e *Engine) NetworkList(ctx context.Context, options network.ListOptions) (answer []network.Summary, err error) {
	if err := e.enter(ctx, "NetworkList"); err != nil {
		return answer, err
	}
	if e.NetworkListFunc == nil {
		return answer, notSet("NetworkList")
	}
	return e.NetworkListFunc(ctx, options)
}

// NetworkRemove answers with e.NetworkRemoveFunc.
func (e *Engine) NetworkRemove(ctx context.Context, name string) error {
	if err := e.enter(ctx, "NetworkRemove"); err != nil {
		return err
	}
	if e.NetworkRemoveFunc == nil {
		return notSet("NetworkRemove")
	}
	return e.NetworkRemoveFunc(ctx, name)
}

// VolumeCreate answers with e.VolumeCreateFunc.
func (e *Engine) VolumeCreate(ctx context.Context, options volume.CreateOptions) (answer volume.Volume, err error) {
	if err := e.enter(ctx, "VolumeCreate"); err != nil {
		return answer, err
	}
	if e.VolumeCreateFunc == nil {
		return answer, notSet("VolumeCreate")
	}
	return e.VolumeCreateFunc(ctx, options)
}

// VolumeInspect answers with e.VolumeInspectFunc.
func (e *Engine) VolumeInspect(ctx context.Context, volumeID string) (answer volume.Volume, err error) {
	if err := e.enter(ctx, "VolumeInspect"); err != nil {
		return answer, err
	}
	if e.VolumeInspectFunc == nil {
		return answer, notSet("VolumeInspect")
	}
	return e.VolumeInspectFunc(ctx, volumeID)
}

// VolumeList answers with e.VolumeListFunc.
func (e *Engine) VolumeList(ctx context.Context, options volume.ListOptions) (answer volume.ListResponse, err error) {
	if err := e.enter(ctx, "VolumeList"); err != nil {
		return answer, err
	}
	if e.VolumeListFunc == nil {
		return answer, notSet("VolumeList")
	}
	return e.VolumeListFunc(ctx, options)
}

// VolumeRemove answers with e.VolumeRemoveFunc.
func (e *Engine) VolumeRemove(ctx context.Context, volumeID string, force bool) error {
	if err := e.enter(ctx, "VolumeRemove"); err != nil {
		return err
	}
	if e.VolumeRemoveFunc == nil {
		return notSet("VolumeRemove")
	}
	return e.VolumeRemoveFunc(ctx, volumeID, force)
}

// CopyFromContainer answers with e.CopyFromContainerFunc.
func (e *Engine) CopyFromContainer(ctx context.Context, id, srcPath string) (io.ReadCloser, container.PathStat, error) {
	if err := e.enter(ctx, "CopyFromContainer"); err != nil {
		return nil, container.PathStat{}, err
	}
	if e.CopyFromContainerFunc == nil {
		return nil, container.PathStat{}, notSet("CopyFromContainer")
	}
	return e.CopyFromContainerFunc(ctx, id, srcPath)
}

// ContainerWait answers with e.ContainerWaitFunc. A failure is sent on the
// error channel, as the client sends the failure of its request; a stalled
// wait does not return, as the client does not while the engine leaves its
// request unanswered.
func (e *Engine) ContainerWait(ctx context.Context, id string, condition container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
	errC := make(chan error, 1)
	if err := e.enter(ctx, "ContainerWait"); err != nil {
		errC <- err
		return make(chan container.WaitResponse), errC
	}
	if e.ContainerWaitFunc == nil {
		errC <- notSet("ContainerWait")
		return make(chan container.WaitResponse), errC
	}
	return e.ContainerWaitFunc(ctx, id, condition)
}

// Events answers with e.EventsFunc; a fault is sent on the error channel.
func (e *Engine) Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error) {
	errC := make(chan error, 1)
	if err := e.enter(ctx, "Events"); err != nil {
		errC <- err
		return make(chan events.Message), errC
	}
	if e.EventsFunc == nil {
		errC <- notSet("Events")
		return make(chan events.Message), errC
	}
	return e.EventsFunc(ctx, options)
}
