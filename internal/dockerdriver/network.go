package dockerdriver

import (
	"context"
	"net/netip"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/berthdev/berth/internal/errs"
)

// NetworkOptions describes a Docker network to create.
type NetworkOptions struct {
	Driver   string // "bridge" (default) or another installed driver
	Internal bool   // no route to the outside
	Subnet   string // CIDR, e.g. "172.30.0.0/24"; empty: Docker picks
	Gateway  string // optional gateway inside Subnet
	Options  map[string]string
	Labels   map[string]string
}

// CreateNetwork creates a network and returns its id. AlreadyExists if a
// network has that name; Invalid for a malformed subnet or gateway.
func (d *Driver) CreateNetwork(ctx context.Context, name string, opts NetworkOptions) (string, error) {
	co := client.NetworkCreateOptions{Driver: opts.Driver, Internal: opts.Internal, Options: opts.Options, Labels: opts.Labels}
	if co.Driver == "" {
		co.Driver = "bridge"
	}
	if opts.Subnet != "" {
		var ipc network.IPAMConfig
		p, err := netip.ParsePrefix(opts.Subnet)
		if err != nil {
			return "", errs.Wrap(errs.Invalid, err, "network %s: subnet %q", name, opts.Subnet)
		}
		ipc.Subnet = p
		if opts.Gateway != "" {
			g, err := netip.ParseAddr(opts.Gateway)
			if err != nil {
				return "", errs.Wrap(errs.Invalid, err, "network %s: gateway %q", name, opts.Gateway)
			}
			ipc.Gateway = g
		}
		co.IPAM = &network.IPAM{Driver: "default", Config: []network.IPAMConfig{ipc}}
	}
	// Docker before API 1.44 creates a second network of the same name
	// unless asked not to, and this client no longer can ask.
	if n, err := d.InspectNetwork(ctx, name); err == nil && n.Name == name {
		return "", errs.E(errs.AlreadyExists, "network %q exists (id %s)", name, n.ID)
	} else if err != nil && !errs.Is(err, errs.NotFound) {
		return "", err
	}
	r, err := call(ctx, "create network "+name, d.t.NetworkCreate, func(ctx context.Context) (client.NetworkCreateResult, error) {
		return d.cli.NetworkCreate(ctx, name, co)
	})
	if err != nil {
		if errs.Is(err, errs.Conflict) {
			return "", errs.Wrap(errs.AlreadyExists, err, "network %q exists", name)
		}
		return "", err
	}
	return r.ID, nil
}

// NetworkInfo describes a network.
type NetworkInfo struct {
	ID       string
	Name     string
	Driver   string
	Internal bool
	Subnets  []string
	Labels   map[string]string
}

// InspectNetwork describes a network by id or name; NotFound if none.
func (d *Driver) InspectNetwork(ctx context.Context, idOrName string) (NetworkInfo, error) {
	r, err := call(ctx, "inspect network "+idOrName, d.t.NetworkInspect, func(ctx context.Context) (client.NetworkInspectResult, error) {
		return d.cli.NetworkInspect(ctx, idOrName, client.NetworkInspectOptions{})
	})
	if err != nil {
		return NetworkInfo{}, err
	}
	n := r.Network
	info := NetworkInfo{ID: n.ID, Name: n.Name, Driver: n.Driver, Internal: n.Internal, Labels: n.Labels}
	for _, c := range n.IPAM.Config {
		if c.Subnet.IsValid() {
			info.Subnets = append(info.Subnets, c.Subnet.String())
		}
	}
	return info, nil
}

// RemoveNetwork removes a network; NotFound if none, Conflict while
// containers are attached.
func (d *Driver) RemoveNetwork(ctx context.Context, idOrName string) error {
	_, err := call(ctx, "remove network "+idOrName, d.t.NetworkRemove, func(ctx context.Context) (client.NetworkRemoveResult, error) {
		return d.cli.NetworkRemove(ctx, idOrName, client.NetworkRemoveOptions{})
	})
	return err
}

// ConnectNetwork attaches a container to a network, reachable under the
// given DNS aliases (user-defined networks only).
func (d *Driver) ConnectNetwork(ctx context.Context, networkID, containerID string, aliases []string) error {
	_, err := call(ctx, "connect container "+containerID+" to network "+networkID, d.t.NetworkConnect,
		func(ctx context.Context) (client.NetworkConnectResult, error) {
			return d.cli.NetworkConnect(ctx, networkID, client.NetworkConnectOptions{Container: containerID,
				EndpointConfig: &network.EndpointSettings{Aliases: aliases}})
		})
	return err
}

// DisconnectNetwork detaches a container from a network.
func (d *Driver) DisconnectNetwork(ctx context.Context, networkID, containerID string, force bool) error {
	_, err := call(ctx, "disconnect container "+containerID+" from network "+networkID, d.t.NetworkConnect,
		func(ctx context.Context) (client.NetworkDisconnectResult, error) {
			return d.cli.NetworkDisconnect(ctx, networkID, client.NetworkDisconnectOptions{Container: containerID, Force: force})
		})
	return err
}

// VolumeInfo describes a Docker volume.
type VolumeInfo struct {
	Name       string
	Driver     string
	Mountpoint string
	Labels     map[string]string
	Options    map[string]string
}

// CreateVolume creates a Docker volume (driver "" is "local"). Creating a
// volume that exists with the same driver returns the existing one.
func (d *Driver) CreateVolume(ctx context.Context, spec VolumeSpec) (VolumeInfo, error) {
	r, err := call(ctx, "create volume "+spec.Name, d.t.VolumeCreate, func(ctx context.Context) (client.VolumeCreateResult, error) {
		return d.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: spec.Name, Driver: spec.Driver,
			DriverOpts: spec.DriverOpts, Labels: spec.Labels})
	})
	if err != nil {
		return VolumeInfo{}, err
	}
	v := r.Volume
	return VolumeInfo{Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint, Labels: v.Labels, Options: v.Options}, nil
}

// InspectVolume describes a volume; NotFound if none.
func (d *Driver) InspectVolume(ctx context.Context, name string) (VolumeInfo, error) {
	r, err := call(ctx, "inspect volume "+name, d.t.VolumeInspect, func(ctx context.Context) (client.VolumeInspectResult, error) {
		return d.cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	})
	if err != nil {
		return VolumeInfo{}, err
	}
	v := r.Volume
	return VolumeInfo{Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint, Labels: v.Labels, Options: v.Options}, nil
}

// RemoveVolume removes a volume; NotFound if none, Conflict while a
// container uses it (unless force).
func (d *Driver) RemoveVolume(ctx context.Context, name string, force bool) error {
	_, err := call(ctx, "remove volume "+name, d.t.VolumeRemove, func(ctx context.Context) (client.VolumeRemoveResult, error) {
		return d.cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: force})
	})
	return err
}
