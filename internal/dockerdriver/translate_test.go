package dockerdriver

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/errs"
)

const (
	tTaskARN  = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"
	tCluster  = "arn:aws:ecs:us-east-1:123456789012:cluster/prod"
	tInstance = "arn:aws:ecs:us-east-1:123456789012:container-instance/prod/abc"
)

func baseTask() TaskInfo {
	return TaskInfo{Cluster: tCluster, TaskARN: tTaskARN, Instance: tInstance, Family: "shop", Revision: 7}
}

func baseDef() ecsapi.ContainerDefinition {
	return ecsapi.ContainerDefinition{Name: ptr("web"), Image: ptr("nginx:1.27")}
}

// baseWant is the translation of baseDef in baseTask.
func baseWant() (*container.Config, *container.HostConfig) {
	stop := 30
	cfg := &container.Config{
		Image: "nginx:1.27",
		Labels: map[string]string{
			LabelECSCluster: tCluster, LabelECSTaskARN: tTaskARN, LabelECSContainerName: "web",
			LabelECSTaskFamily: "shop", LabelECSTaskDefVersion: "7",
			LabelManaged: "true", LabelCluster: tCluster, LabelTaskARN: tTaskARN, LabelContainerName: "web", LabelInstance: tInstance,
		},
		StopTimeout: &stop,
	}
	host := &container.HostConfig{NetworkMode: "bridge"}
	host.CPUShares = 2
	return cfg, host
}

func port(s string) network.Port { return network.MustParsePort(s) }

func TestContainerConfig(t *testing.T) {
	shmTrue := true
	cases := []struct {
		name string
		task func(*TaskInfo)
		def  func(*ecsapi.ContainerDefinition)
		opts Options
		want func(*container.Config, *container.HostConfig)
		net  *network.NetworkingConfig
	}{
		{name: "minimal bridge container"},
		{
			name: "command, entry point, working directory, user, hostname",
			def: func(d *ecsapi.ContainerDefinition) {
				d.Command = []string{"serve", "--port", "80"}
				d.EntryPoint = []string{"/bin/app"}
				d.WorkingDirectory = ptr("/srv")
				d.User = ptr("1000:1000")
				d.Hostname = ptr("web-1")
			},
			want: func(c *container.Config, h *container.HostConfig) {
				c.Cmd = []string{"serve", "--port", "80"}
				c.Entrypoint = []string{"/bin/app"}
				c.WorkingDir = "/srv"
				c.User = "1000:1000"
				c.Hostname = "web-1"
			},
		},
		{
			name: "environment keeps order, last duplicate wins, agent variables override",
			def: func(d *ecsapi.ContainerDefinition) {
				d.Environment = []ecsapi.KeyValuePair{{Name: ptr("B"), Value: ptr("1")}, {Name: ptr("A"), Value: ptr("2")},
					{Name: ptr("B"), Value: ptr("3")}, {Name: ptr("META"), Value: ptr("user")}}
				d.EnvironmentFiles = []ecsapi.EnvironmentFile{{Value: ptr("arn:aws:s3:::bucket/x.env")}}
			},
			opts: Options{Env: map[string]string{"META": "agent", "ECS_CONTAINER_METADATA_URI_V4": "http://169.254.170.2/v4/x"}},
			want: func(c *container.Config, h *container.HostConfig) {
				c.Env = []string{"B=3", "A=2", "META=agent", "ECS_CONTAINER_METADATA_URI_V4=http://169.254.170.2/v4/x"}
			},
		},
		{
			name: "docker labels cannot override ECS or Berth labels",
			def: func(d *ecsapi.ContainerDefinition) {
				d.DockerLabels = map[string]string{"team": "shop", LabelECSTaskARN: "forged", LabelManaged: "false"}
			},
			opts: Options{Labels: map[string]string{"berth.test": "1", LabelTaskARN: "forged"}},
			want: func(c *container.Config, h *container.HostConfig) {
				c.Labels["team"] = "shop"
				c.Labels["berth.test"] = "1"
			},
		},
		{
			name: "image override",
			opts: Options{Image: "nginx@sha256:0123"},
			want: func(c *container.Config, h *container.HostConfig) { c.Image = "nginx@sha256:0123" },
		},
		{
			name: "cpu, memory and reservation",
			def: func(d *ecsapi.ContainerDefinition) {
				d.Cpu = ptr(int32(512))
				d.Memory = ptr(int32(256))
				d.MemoryReservation = ptr(int32(128))
			},
			want: func(c *container.Config, h *container.HostConfig) {
				h.CPUShares = 512
				h.Memory = 256 << 20
				h.MemoryReservation = 128 << 20
			},
		},
		{
			name: "cpu 1 is raised to 2 shares, tiny memory to Docker's minimum",
			def: func(d *ecsapi.ContainerDefinition) {
				d.Cpu = ptr(int32(1))
				d.Memory = ptr(int32(4))
			},
			want: func(c *container.Config, h *container.HostConfig) { h.Memory = MinMemoryBytes },
		},
		{
			name: "ulimits, sysctls, dns, extra hosts, security options",
			def: func(d *ecsapi.ContainerDefinition) {
				d.Ulimits = []ecsapi.Ulimit{{Name: ptr(ecsapi.UlimitName("nofile")), SoftLimit: ptr(int32(1024)), HardLimit: ptr(int32(4096))}}
				d.SystemControls = []ecsapi.SystemControl{{Namespace: ptr("net.core.somaxconn"), Value: ptr("1024")}}
				d.DnsServers = []string{"10.0.0.2", "fd00::53"}
				d.DnsSearchDomains = []string{"svc.local"}
				d.ExtraHosts = []ecsapi.HostEntry{{Hostname: ptr("db"), IpAddress: ptr("10.0.0.9")}}
				d.DockerSecurityOptions = []string{"no-new-privileges"}
			},
			want: func(c *container.Config, h *container.HostConfig) {
				h.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}}
				h.Sysctls = map[string]string{"net.core.somaxconn": "1024"}
				h.DNS = []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("fd00::53")}
				h.DNSSearch = []string{"svc.local"}
				h.ExtraHosts = []string{"db:10.0.0.9"}
				h.SecurityOpt = []string{"no-new-privileges"}
			},
		},
		{
			name: "privileged, read-only root, tty, stdin, networking disabled",
			def: func(d *ecsapi.ContainerDefinition) {
				d.Privileged = ptr(true)
				d.ReadonlyRootFilesystem = ptr(true)
				d.PseudoTerminal = ptr(true)
				d.Interactive = ptr(true)
				d.DisableNetworking = ptr(true)
			},
			want: func(c *container.Config, h *container.HostConfig) {
				h.Privileged = true
				h.ReadonlyRootfs = true
				c.Tty = true
				c.OpenStdin = true
				c.NetworkDisabled = true
			},
		},
		{
			name: "linux parameters",
			def: func(d *ecsapi.ContainerDefinition) {
				d.Memory = ptr(int32(64))
				d.LinuxParameters = &ecsapi.LinuxParameters{
					Capabilities:       &ecsapi.KernelCapabilities{Add: []string{"NET_ADMIN"}, Drop: []string{"MKNOD"}},
					InitProcessEnabled: ptr(true),
					SharedMemorySize:   ptr(int32(128)),
					Tmpfs:              []ecsapi.Tmpfs{{ContainerPath: ptr("/run"), Size: ptr(int32(16)), MountOptions: []string{"noexec"}}},
					Devices: []ecsapi.Device{{HostPath: ptr("/dev/fuse")},
						{HostPath: ptr("/dev/sda"), ContainerPath: ptr("/dev/xvda"), Permissions: []ecsapi.DeviceCgroupPermission{"write", "read"}}},
					MaxSwap:    ptr(int32(32)),
					Swappiness: ptr(int32(10)),
				}
			},
			want: func(c *container.Config, h *container.HostConfig) {
				h.Memory = 64 << 20
				h.CapAdd = []string{"NET_ADMIN"}
				h.CapDrop = []string{"MKNOD"}
				h.Init = &shmTrue
				h.ShmSize = 128 << 20
				h.Tmpfs = map[string]string{"/run": "size=16m,noexec"}
				h.Devices = []container.DeviceMapping{{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
					{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "rw"}}
				h.MemorySwap = (64 + 32) << 20
				sw := int64(10)
				h.MemorySwappiness = &sw
			},
		},
		{
			name: "health check with ECS defaults",
			def: func(d *ecsapi.ContainerDefinition) {
				d.HealthCheck = &ecsapi.HealthCheck{Command: []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"}}
			},
			want: func(c *container.Config, h *container.HostConfig) {
				c.Healthcheck = &container.HealthConfig{Test: []string{"CMD-SHELL", "curl -f http://localhost/ || exit 1"},
					Interval: 30 * time.Second, Timeout: 5 * time.Second, Retries: 3}
			},
		},
		{
			name: "health check with explicit values",
			def: func(d *ecsapi.ContainerDefinition) {
				d.HealthCheck = &ecsapi.HealthCheck{Command: []string{"CMD", "/bin/check"}, Interval: ptr(int32(10)),
					Timeout: ptr(int32(2)), Retries: ptr(int32(5)), StartPeriod: ptr(int32(60))}
			},
			want: func(c *container.Config, h *container.HostConfig) {
				c.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "/bin/check"},
					Interval: 10 * time.Second, Timeout: 2 * time.Second, Retries: 5, StartPeriod: time.Minute}
			},
		},
		{
			name: "stop timeout from the definition",
			def:  func(d *ecsapi.ContainerDefinition) { d.StopTimeout = ptr(int32(5)) },
			want: func(c *container.Config, h *container.HostConfig) { *c.StopTimeout = 5 },
		},
		{
			name: "stop timeout from the agent's default",
			opts: Options{DefaultStopTimeout: 12 * time.Second},
			want: func(c *container.Config, h *container.HostConfig) { *c.StopTimeout = 12 },
		},
		{
			name: "json-file log driver with options",
			def: func(d *ecsapi.ContainerDefinition) {
				d.LogConfiguration = &ecsapi.LogConfiguration{LogDriver: ptr(ecsapi.LogDriverJsonFile),
					Options: map[string]string{"max-size": "10m"}}
			},
			want: func(c *container.Config, h *container.HostConfig) {
				h.LogConfig = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m"}}
			},
		},
		{
			name: "awslogs mapped by the agent's hook",
			def: func(d *ecsapi.ContainerDefinition) {
				d.LogConfiguration = &ecsapi.LogConfiguration{LogDriver: ptr(ecsapi.LogDriverAwslogs),
					Options: map[string]string{"awslogs-group": "g"}}
			},
			opts: Options{LogDriver: func(lc ecsapi.LogConfiguration) (container.LogConfig, error) {
				return container.LogConfig{Type: "awslogs", Config: map[string]string{
					"awslogs-group": lc.Options["awslogs-group"], "awslogs-endpoint": "http://127.0.0.1:4566"}}, nil
			}},
			want: func(c *container.Config, h *container.HostConfig) {
				h.LogConfig = container.LogConfig{Type: "awslogs", Config: map[string]string{
					"awslogs-group": "g", "awslogs-endpoint": "http://127.0.0.1:4566"}}
			},
		},
		{
			name: "bridge port mappings: fixed, ephemeral, udp, range",
			def: func(d *ecsapi.ContainerDefinition) {
				d.PortMappings = []ecsapi.PortMapping{
					{ContainerPort: ptr(int32(80)), HostPort: ptr(int32(8080))},
					{ContainerPort: ptr(int32(443))},
					{ContainerPort: ptr(int32(53)), HostPort: ptr(int32(0)), Protocol: ptr(ecsapi.TransportProtocolUdp)},
					{ContainerPortRange: ptr("9000-9001")},
				}
			},
			want: func(c *container.Config, h *container.HostConfig) {
				c.ExposedPorts = network.PortSet{port("80/tcp"): {}, port("443/tcp"): {}, port("53/udp"): {},
					port("9000/tcp"): {}, port("9001/tcp"): {}}
				h.PortBindings = network.PortMap{
					port("80/tcp"): {{HostPort: "8080"}}, port("443/tcp"): {{HostPort: ""}}, port("53/udp"): {{HostPort: ""}},
					port("9000/tcp"): {{HostPort: ""}}, port("9001/tcp"): {{HostPort: ""}},
				}
			},
		},
		{
			name: "host mode exposes ports without bindings",
			task: func(t *TaskInfo) { t.NetworkMode = ecsapi.NetworkModeHost },
			def: func(d *ecsapi.ContainerDefinition) {
				d.PortMappings = []ecsapi.PortMapping{{ContainerPort: ptr(int32(80)), HostPort: ptr(int32(80))}}
			},
			want: func(c *container.Config, h *container.HostConfig) {
				h.NetworkMode = "host"
				c.ExposedPorts = network.PortSet{port("80/tcp"): {}}
			},
		},
		{
			name: "none mode",
			task: func(t *TaskInfo) { t.NetworkMode = ecsapi.NetworkModeNone },
			want: func(c *container.Config, h *container.HostConfig) { h.NetworkMode = "none" },
		},
		{
			name: "awsvpc joins the network container; ports stay with it",
			task: func(t *TaskInfo) { t.NetworkMode = ecsapi.NetworkModeAwsvpc },
			def: func(d *ecsapi.ContainerDefinition) {
				d.PortMappings = []ecsapi.PortMapping{{ContainerPort: ptr(int32(80))}}
			},
			opts: Options{NetworkContainer: "abc123"},
			want: func(c *container.Config, h *container.HostConfig) { h.NetworkMode = "container:abc123" },
		},
		{
			name: "bridge on a user-defined network with aliases",
			opts: Options{Network: "berth-shop", NetworkAliases: []string{"web"}},
			want: func(c *container.Config, h *container.HostConfig) { h.NetworkMode = "berth-shop" },
			net: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
				"berth-shop": {Aliases: []string{"web"}}}},
		},
		{
			name: "links and volumesFrom by task container name",
			def: func(d *ecsapi.ContainerDefinition) {
				d.Links = []string{"db", "cache:redis"}
				d.VolumesFrom = []ecsapi.VolumeFrom{{SourceContainer: ptr("data"), ReadOnly: ptr(true)}, {SourceContainer: ptr("db")}}
			},
			opts: Options{Containers: map[string]string{"db": "berth-shop-7-db-x", "cache": "c1d2", "data": "d4t4"}},
			want: func(c *container.Config, h *container.HostConfig) {
				h.Links = []string{"berth-shop-7-db-x:db", "c1d2:redis"}
				h.VolumesFrom = []string{"d4t4:ro", "berth-shop-7-db-x"}
			},
		},
		{
			name: "mount points: host path, docker volume, empty volume, shared volume, read-only",
			task: func(t *TaskInfo) {
				t.Volumes = []ecsapi.Volume{
					{Name: ptr("logs"), Host: &ecsapi.HostVolumeProperties{SourcePath: ptr("/var/log/shop")}},
					{Name: ptr("cache"), DockerVolumeConfiguration: &ecsapi.DockerVolumeConfiguration{Scope: ptr(ecsapi.ScopeTask)}},
					{Name: ptr("scratch")},
					{Name: ptr("scratch2"), Host: &ecsapi.HostVolumeProperties{}},
					{Name: ptr("shared"), DockerVolumeConfiguration: &ecsapi.DockerVolumeConfiguration{Scope: ptr(ecsapi.ScopeShared)}},
				}
			},
			def: func(d *ecsapi.ContainerDefinition) {
				d.MountPoints = []ecsapi.MountPoint{
					{SourceVolume: ptr("logs"), ContainerPath: ptr("/logs")},
					{SourceVolume: ptr("cache"), ContainerPath: ptr("/cache"), ReadOnly: ptr(true)},
					{SourceVolume: ptr("scratch"), ContainerPath: ptr("/tmp")},
					{SourceVolume: ptr("scratch2"), ContainerPath: ptr("/tmp2")},
					{SourceVolume: ptr("shared"), ContainerPath: ptr("/shared")},
				}
			},
			opts: Options{VolumeNames: map[string]string{"scratch2": "custom"}},
			want: func(c *container.Config, h *container.HostConfig) {
				h.Binds = []string{"/var/log/shop:/logs", "berth-0123456789abcdef0123456789abcdef-cache:/cache:ro",
					"berth-0123456789abcdef0123456789abcdef-scratch:/tmp", "custom:/tmp2", "shared:/shared"}
			},
		},
		{
			name: "pid and ipc modes",
			task: func(t *TaskInfo) {
				t.PidMode = ecsapi.PidModeTask
				t.IpcMode = ecsapi.IpcModeHost
			},
			opts: Options{NamespaceContainer: "ns1"},
			want: func(c *container.Config, h *container.HostConfig) {
				h.PidMode = "container:ns1"
				h.IpcMode = "host"
			},
		},
		{
			name: "runner concerns are ignored",
			def: func(d *ecsapi.ContainerDefinition) {
				d.Essential = ptr(false)
				d.DependsOn = []ecsapi.ContainerDependency{{ContainerName: ptr("db"), Condition: ptr(ecsapi.ContainerCondition("HEALTHY"))}}
				d.StartTimeout = ptr(int32(60))
				d.RepositoryCredentials = &ecsapi.RepositoryCredentials{CredentialsParameter: ptr("arn:secret")}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			task, def := baseTask(), baseDef()
			if c.task != nil {
				c.task(&task)
			}
			if c.def != nil {
				c.def(&def)
			}
			wantCfg, wantHost := baseWant()
			if c.want != nil {
				c.want(wantCfg, wantHost)
			}
			cfg, host, netCfg, err := ContainerConfig(task, def, c.opts)
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(cfg, wantCfg) {
				t.Errorf("config:\n got %s\nwant %s", js(cfg), js(wantCfg))
			}
			if !reflect.DeepEqual(host, wantHost) {
				t.Errorf("host config:\n got %s\nwant %s", js(host), js(wantHost))
			}
			if !reflect.DeepEqual(netCfg, c.net) {
				t.Errorf("networking config:\n got %s\nwant %s", js(netCfg), js(c.net))
			}
		})
	}
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestContainerConfigErrors(t *testing.T) {
	cases := []struct {
		name        string
		task        func(*TaskInfo)
		def         func(*ecsapi.ContainerDefinition)
		opts        Options
		wantOption  string // the message names it
		unsupported bool   // reason ReasonUnsupportedOption
	}{
		{name: "no image", def: func(d *ecsapi.ContainerDefinition) { d.Image = nil }, wantOption: "image"},
		{name: "secrets", def: func(d *ecsapi.ContainerDefinition) {
			d.Secrets = []ecsapi.Secret{{Name: ptr("PW"), ValueFrom: ptr("arn:x")}}
		}, wantOption: "secrets", unsupported: true},
		{name: "firelens", def: func(d *ecsapi.ContainerDefinition) {
			d.FirelensConfiguration = &ecsapi.FirelensConfiguration{}
		}, wantOption: "firelensConfiguration", unsupported: true},
		{name: "gpu", def: func(d *ecsapi.ContainerDefinition) {
			d.ResourceRequirements = []ecsapi.ResourceRequirement{{Value: ptr("1")}}
		}, wantOption: "resourceRequirements", unsupported: true},
		{name: "awslogs without a hook", def: func(d *ecsapi.ContainerDefinition) {
			d.LogConfiguration = &ecsapi.LogConfiguration{LogDriver: ptr(ecsapi.LogDriverAwslogs)}
		}, wantOption: "logConfiguration.logDriver", unsupported: true},
		{name: "log secret options", def: func(d *ecsapi.ContainerDefinition) {
			d.LogConfiguration = &ecsapi.LogConfiguration{LogDriver: ptr(ecsapi.LogDriverSplunk),
				SecretOptions: []ecsapi.Secret{{Name: ptr("splunk-token"), ValueFrom: ptr("arn:x")}}}
		}, wantOption: "logConfiguration.secretOptions", unsupported: true},
		{name: "efs volume", task: func(t *TaskInfo) {
			t.Volumes = []ecsapi.Volume{{Name: ptr("efs"), EfsVolumeConfiguration: &ecsapi.EFSVolumeConfiguration{}}}
		}, def: func(d *ecsapi.ContainerDefinition) {
			d.MountPoints = []ecsapi.MountPoint{{SourceVolume: ptr("efs"), ContainerPath: ptr("/efs")}}
		}, wantOption: "mountPoints", unsupported: true},
		{name: "mount of an unknown volume", def: func(d *ecsapi.ContainerDefinition) {
			d.MountPoints = []ecsapi.MountPoint{{SourceVolume: ptr("nope"), ContainerPath: ptr("/x")}}
		}, wantOption: "mountPoints"},
		{name: "link to an unknown container", def: func(d *ecsapi.ContainerDefinition) { d.Links = []string{"db"} }, wantOption: "links"},
		{name: "volumesFrom an unknown container", def: func(d *ecsapi.ContainerDefinition) {
			d.VolumesFrom = []ecsapi.VolumeFrom{{SourceContainer: ptr("data")}}
		}, wantOption: "volumesFrom"},
		{name: "links in host mode", task: func(t *TaskInfo) { t.NetworkMode = ecsapi.NetworkModeHost },
			def: func(d *ecsapi.ContainerDefinition) { d.Links = []string{"db"} }, opts: Options{Containers: map[string]string{"db": "x"}},
			wantOption: "links"},
		{name: "hostname in host mode", task: func(t *TaskInfo) { t.NetworkMode = ecsapi.NetworkModeHost },
			def: func(d *ecsapi.ContainerDefinition) { d.Hostname = ptr("h") }, wantOption: "hostname"},
		{name: "host port differs in host mode", task: func(t *TaskInfo) { t.NetworkMode = ecsapi.NetworkModeHost },
			def: func(d *ecsapi.ContainerDefinition) {
				d.PortMappings = []ecsapi.PortMapping{{ContainerPort: ptr(int32(80)), HostPort: ptr(int32(8080))}}
			}, wantOption: "portMappings.hostPort"},
		{name: "awsvpc without network container", task: func(t *TaskInfo) { t.NetworkMode = ecsapi.NetworkModeAwsvpc },
			wantOption: "networkMode"},
		{name: "hostname when joining a network container", task: func(t *TaskInfo) { t.NetworkMode = ecsapi.NetworkModeAwsvpc },
			def: func(d *ecsapi.ContainerDefinition) { d.Hostname = ptr("h") }, opts: Options{NetworkContainer: "p"}, wantOption: "hostname"},
		{name: "port mapping without a port", def: func(d *ecsapi.ContainerDefinition) {
			d.PortMappings = []ecsapi.PortMapping{{HostPort: ptr(int32(80))}}
		}, wantOption: "portMappings"},
		{name: "bad port range", def: func(d *ecsapi.ContainerDefinition) {
			d.PortMappings = []ecsapi.PortMapping{{ContainerPortRange: ptr("9001-9000")}}
		}, wantOption: "portMappings.containerPortRange"},
		{name: "bad dns server", def: func(d *ecsapi.ContainerDefinition) { d.DnsServers = []string{"dns.example"} }, wantOption: "dnsServers"},
		{name: "reservation above limit", def: func(d *ecsapi.ContainerDefinition) {
			d.Memory, d.MemoryReservation = ptr(int32(128)), ptr(int32(256))
		}, wantOption: "memoryReservation"},
		{name: "health check without CMD", def: func(d *ecsapi.ContainerDefinition) {
			d.HealthCheck = &ecsapi.HealthCheck{Command: []string{"curl", "localhost"}}
		}, wantOption: "healthCheck.command"},
		{name: "maxSwap without memory", def: func(d *ecsapi.ContainerDefinition) {
			d.LinuxParameters = &ecsapi.LinuxParameters{MaxSwap: ptr(int32(10))}
		}, wantOption: "linuxParameters.maxSwap"},
		{name: "pid mode task without namespace container", task: func(t *TaskInfo) { t.PidMode = ecsapi.PidModeTask },
			wantOption: "pidMode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			task, def := baseTask(), baseDef()
			if c.task != nil {
				c.task(&task)
			}
			if c.def != nil {
				c.def(&def)
			}
			_, _, _, err := ContainerConfig(task, def, c.opts)
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("err = %v (kind %v), want Invalid", err, errs.KindOf(err))
			}
			msg := errs.MessageOf(err)
			if !strings.HasPrefix(msg, "container web: "+c.wantOption+":") {
				t.Errorf("message %q does not name %q", msg, c.wantOption)
			}
			if got := errs.ReasonOf(err) == ReasonUnsupportedOption; got != c.unsupported {
				t.Errorf("reason = %q, unsupported want %v", errs.ReasonOf(err), c.unsupported)
			}
		})
	}
}

func TestTaskVolumes(t *testing.T) {
	task := baseTask()
	task.Volumes = []ecsapi.Volume{
		{Name: ptr("logs"), Host: &ecsapi.HostVolumeProperties{SourcePath: ptr("/var/log")}},
		{Name: ptr("empty")},
		{Name: ptr("db"), DockerVolumeConfiguration: &ecsapi.DockerVolumeConfiguration{Driver: ptr("local"),
			DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}, Labels: map[string]string{"app": "shop"}}},
		{Name: ptr("shared"), DockerVolumeConfiguration: &ecsapi.DockerVolumeConfiguration{Scope: ptr(ecsapi.ScopeShared),
			Autoprovision: ptr(true)}},
	}
	got, err := TaskVolumes(task, Options{})
	if err != nil {
		t.Fatal(err)
	}
	taskLabels := func(vol string, extra ...string) map[string]string {
		l := map[string]string{LabelManaged: "true", LabelVolume: vol, LabelTaskARN: tTaskARN, LabelInstance: tInstance}
		for i := 0; i+1 < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return l
	}
	want := []VolumeSpec{
		{Name: "berth-0123456789abcdef0123456789abcdef-empty", TaskVolume: "empty", Scope: ecsapi.ScopeTask, Labels: taskLabels("empty")},
		{Name: "berth-0123456789abcdef0123456789abcdef-db", TaskVolume: "db", Driver: "local", Scope: ecsapi.ScopeTask,
			DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}, Labels: taskLabels("db", "app", "shop")},
		{Name: "shared", TaskVolume: "shared", Scope: ecsapi.ScopeShared, Autoprovision: true,
			Labels: map[string]string{LabelManaged: "true", LabelVolume: "shared"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TaskVolumes:\n got %s\nwant %s", js(got), js(want))
	}
}

func TestNamesAndStopTimeout(t *testing.T) {
	task := baseTask()
	if got, want := DockerName(task, "web/1"), "berth-shop-7-web_1-0123456789abcdef0123456789abcdef"; got != want {
		t.Errorf("DockerName = %q, want %q", got, want)
	}
	if got := StopTimeout(ecsapi.ContainerDefinition{}, 0); got != 30*time.Second {
		t.Errorf("default stop timeout = %s", got)
	}
	if got := StopTimeout(ecsapi.ContainerDefinition{StopTimeout: ptr(int32(2))}, time.Minute); got != 2*time.Second {
		t.Errorf("stop timeout = %s", got)
	}
	ti := TaskInfoFromDefinition("c", tTaskARN, "i", ecsapi.TaskDefinition{Family: ptr("f"), Revision: ptr(int32(3)),
		NetworkMode: ptr(ecsapi.NetworkModeHost)})
	if ti.Family != "f" || ti.Revision != 3 || ti.NetworkMode != ecsapi.NetworkModeHost || ti.TaskID() != "0123456789abcdef0123456789abcdef" {
		t.Errorf("TaskInfoFromDefinition = %+v", ti)
	}
}

func TestParsePullBehavior(t *testing.T) {
	for in, want := range map[string]PullBehavior{"": PullDefault, "default": PullDefault, "ALWAYS": PullAlways,
		"once": PullOnce, " prefer-cached ": PullPreferCached} {
		if got, err := ParsePullBehavior(in); err != nil || got != want {
			t.Errorf("ParsePullBehavior(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParsePullBehavior("sometimes"); !errs.Is(err, errs.Invalid) {
		t.Errorf("err = %v", err)
	}
}

func TestTimeoutDefaults(t *testing.T) {
	got := Timeouts{Create: time.Second}.withDefaults()
	if got.Create != time.Second || got.Start != 3*time.Minute || got.PullInactivity != time.Minute || got.Inspect != 30*time.Second {
		t.Errorf("withDefaults = %+v", got)
	}
	v := reflect.ValueOf(DefaultTimeouts())
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).Interface().(time.Duration) <= 0 {
			t.Errorf("DefaultTimeouts().%s is zero", v.Type().Field(i).Name)
		}
	}
}
