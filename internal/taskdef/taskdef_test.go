package taskdef

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/errs"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from Build's output")

var testOpts = Options{
	Revision:          3,
	TaskDefinitionArn: "arn:aws:ecs:us-east-1:123456789012:task-definition/test:3",
	RegisteredAt:      time.Date(2025, 3, 4, 5, 6, 7, 890_000_000, time.UTC),
	RegisteredBy:      "arn:aws:iam::123456789012:user/dev",
}

// decode turns a JSON request into the wire shape, failing the test on
// malformed JSON.
func decode(t testing.TB, s string) *ecsapi.RegisterTaskDefinitionRequest {
	t.Helper()
	var in ecsapi.RegisterTaskDefinitionRequest
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return &in
}

// build decodes and builds, and checks the model-level validation passes
// so that every case exercises Build's own rules.
func build(t testing.TB, s string) (*ecsapi.TaskDefinition, error) {
	t.Helper()
	in := decode(t, s)
	if err := in.Validate(); err != nil {
		t.Fatalf("model validation rejected the test input: %v", err)
	}
	return Build(in, testOpts)
}

func TestParseCPU(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"1024", 1024, true},
		{"256", 256, true},
		{" 512 ", 512, true},
		{"1 vCPU", 1024, true},
		{"1 vcpu", 1024, true},
		{"2vCPU", 2048, true},
		{"0.25 vCPU", 256, true},
		{".5 vCPU", 512, true},
		{"0.125 VCPU", 128, true},
		{"16 vCPU", 16384, true},
		{"0", 0, true},
		{"", 0, false},
		{"   ", 0, false},
		{"vCPU", 0, false},
		{"0.1 vCPU", 0, false}, // 102.4 units: not whole
		{"1.5.2 vCPU", 0, false},
		{"-1", 0, false},
		{"1024 units", 0, false},
		{"1 GB", 0, false},
		{"1e3", 0, false},
		{"99999999999", 0, false},
		{"9999999 vCPU", 0, false},
	} {
		got, err := ParseCPU(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseCPU(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errs.Is(err, errs.Invalid) {
			t.Errorf("ParseCPU(%q) error kind = %v, want invalid", tc.in, errs.KindOf(err))
		}
	}
}

func TestParseMemory(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"512", 512, true},
		{"2048", 2048, true},
		{"1GB", 1024, true},
		{"1 GB", 1024, true},
		{"2 gb", 2048, true},
		{"0.5GB", 512, true},
		{"0.5 GB", 512, true},
		{"120 GB", 122880, true},
		{"", 0, false},
		{"GB", 0, false},
		{"1 GiB", 0, false},
		{"512 MiB", 0, false},
		{"0.3 GB", 0, false}, // 307.2 MiB: not whole
		{"1,024", 0, false},
		{"-512", 0, false},
	} {
		got, err := ParseMemory(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// Building blocks of the rule tables: a valid container, a valid EC2 task
// around some containers, and a valid Fargate task.
const app = `{"name":"app","image":"nginx","memory":128}`

func ec2Task(extra string, containers ...string) string {
	if len(containers) == 0 {
		containers = []string{app}
	}
	if extra != "" {
		extra = "," + extra
	}
	return `{"family":"web","containerDefinitions":[` + strings.Join(containers, ",") + `]` + extra + `}`
}

func fargateTask(extra string, containers ...string) string {
	base := `"networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512","executionRoleArn":"arn:aws:iam::123456789012:role/exec"`
	if extra != "" {
		base += "," + extra
	}
	if len(containers) == 0 {
		containers = []string{`{"name":"app","image":"nginx"}`}
	}
	return ec2Task(base, containers...)
}

func TestBuildRejects(t *testing.T) {
	const client, param = ReasonClient, ReasonParam
	tests := []struct {
		name   string
		in     string
		reason string
		msg    string
	}{
		// Family.
		{"family empty", `{"family":"","containerDefinitions":[` + app + `]}`, client, "Family can not be blank."},
		{"family blank", `{"family":"  ","containerDefinitions":[` + app + `]}`, client, "Family can not be blank."},
		{"family with a dot", `{"family":"web.v2","containerDefinitions":[` + app + `]}`, client, "Family contains invalid characters."},
		{"family with a colon", `{"family":"web:1","containerDefinitions":[` + app + `]}`, client, "Family contains invalid characters."},
		{"family of 256 characters", `{"family":"` + strings.Repeat("f", 256) + `","containerDefinitions":[` + app + `]}`, client, "Family contains invalid characters."},

		// Container list.
		{"no containers", `{"family":"web","containerDefinitions":[]}`, client, "Container list cannot be empty."},
		{"eleven containers", ec2Task("", elevenContainers()...), client, "Too many containers."},

		// Container names and images.
		{"container name missing", ec2Task("", `{"image":"nginx","memory":128}`), client, "Container.name should not be null or empty."},
		{"container name empty", ec2Task("", `{"name":"","image":"nginx","memory":128}`), client, "Container.name should not be null or empty."},
		{"container name with a space", ec2Task("", `{"name":"my app","image":"nginx","memory":128}`), client, "Container.name contains invalid characters."},
		{"container name of 256 characters", ec2Task("", `{"name":"`+strings.Repeat("c", 256)+`","image":"nginx","memory":128}`), client, "Container.name contains invalid characters."},
		{"container names repeated", ec2Task("", app, app), client, "Container names must be unique within a Task Definition."},
		{"image missing", ec2Task("", `{"name":"app","memory":128}`), client, "Container.image should not be null or empty."},
		{"image blank", ec2Task("", `{"name":"app","image":" ","memory":128}`), client, "Container.image should not be null or empty."},
		{"image with a space", ec2Task("", `{"name":"app","image":"nginx latest","memory":128}`), client, "Container.image contains invalid characters."},

		// Essential containers.
		{"no essential container", ec2Task("", `{"name":"app","image":"nginx","memory":128,"essential":false}`), client, "Task definition doesn't have any essential container."},

		// Task cpu and memory.
		{"task cpu empty", ec2Task(`"cpu":""`), param, "Invalid 'cpu' setting for task."},
		{"task cpu not a number", ec2Task(`"cpu":"lots"`), param, "Invalid 'cpu' setting for task."},
		{"task cpu below EC2 minimum", ec2Task(`"cpu":"64"`), client, taskCPUMsg},
		{"task cpu above EC2 maximum", ec2Task(`"cpu":"200 vCPU"`), client, taskCPUMsg},
		{"task memory not a number", ec2Task(`"memory":"1 TB"`), param, "Invalid 'memory' setting for task."},
		{"task memory zero", ec2Task(`"memory":"0"`), client, taskMemoryMsg},

		// Container memory.
		{"no memory anywhere", ec2Task("", `{"name":"app","image":"nginx"}`), client, "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified."},
		{"no memory anywhere with EC2 required", ec2Task(`"requiresCompatibilities":["EC2"]`, `{"name":"app","image":"nginx","cpu":10}`), client, "Invalid setting for container 'app'. At least one of 'memory' or 'memoryReservation' must be specified."},
		{"memory below minimum", ec2Task("", `{"name":"app","image":"nginx","memory":4}`), client, "Invalid 'memory' setting for container 'app'. The minimum is 6 MiB."},
		{"memory reservation below minimum", ec2Task("", `{"name":"app","image":"nginx","memoryReservation":5}`), client, "Invalid 'memoryReservation' setting for container 'app'. The minimum is 6 MiB."},
		{"memory reservation above memory", ec2Task("", `{"name":"app","image":"nginx","memory":128,"memoryReservation":256}`), client, "Invalid 'memoryReservation' setting for container 'app'. 'memoryReservation' must be less than or equal to 'memory'."},
		{"container memory above task memory", ec2Task(`"memory":"512"`, `{"name":"app","image":"nginx","memory":1024}`), client, "The 'memory' setting for container 'app' is greater than for the task."},
		{"memory reservations above task memory", ec2Task(`"memory":"512"`, `{"name":"a","image":"nginx","memoryReservation":300}`, `{"name":"b","image":"nginx","memoryReservation":300}`), client, "The sum of all container 'memoryReservation' values cannot be greater than the value of the task 'memory'."},
		{"memory limits above task memory", ec2Task(`"memory":"512"`, `{"name":"a","image":"nginx","memory":300}`, `{"name":"b","image":"nginx","memory":300}`), client, "The sum of all container 'memory' values cannot be greater than the value of the task 'memory'."},
		{"negative container cpu", ec2Task("", `{"name":"app","image":"nginx","memory":128,"cpu":-1}`), client, "Invalid 'cpu' setting for container 'app'."},
		{"container cpu above task cpu", ec2Task(`"cpu":"256"`, `{"name":"a","image":"nginx","memory":128,"cpu":200}`, `{"name":"b","image":"nginx","memory":128,"cpu":100}`), client, "The sum of all container 'cpu' values cannot be greater than the value of the task 'cpu'."},

		// Port mappings.
		{"port mapping without container port", ec2Task("", `{"name":"app","image":"nginx","memory":128,"portMappings":[{"hostPort":80}]}`), client, "Invalid 'containerPort' setting for container 'app'."},
		{"container port zero", ec2Task("", `{"name":"app","image":"nginx","memory":128,"portMappings":[{"containerPort":0}]}`), client, "Invalid 'containerPort' setting for container 'app'."},
		{"container port above 65535", ec2Task("", `{"name":"app","image":"nginx","memory":128,"portMappings":[{"containerPort":70000}]}`), client, "Invalid 'containerPort' setting for container 'app'."},
		{"host port negative", ec2Task("", `{"name":"app","image":"nginx","memory":128,"portMappings":[{"containerPort":80,"hostPort":-1}]}`), client, "Invalid 'hostPort' setting for container 'app'."},
		{"awsvpc host port differs", ec2Task(`"networkMode":"awsvpc"`, `{"name":"app","image":"nginx","memory":128,"portMappings":[{"containerPort":80,"hostPort":8080}]}`), client, "When networkMode=awsvpc, the host ports and container ports in port mappings must match."},
		{"host mode host port differs", ec2Task(`"networkMode":"host"`, `{"name":"app","image":"nginx","memory":128,"portMappings":[{"containerPort":80,"hostPort":8080}]}`), client, "When networkMode=host, the host ports and container ports in port mappings must match."},
		{"none mode with port mappings", ec2Task(`"networkMode":"none"`, `{"name":"app","image":"nginx","memory":128,"portMappings":[{"containerPort":80}]}`), client, "Port mappings are not supported when networkMode=none."},
		{"bridge static host port twice", ec2Task("", `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPort":80,"hostPort":3000}]}`, `{"name":"b","image":"nginx","memory":128,"portMappings":[{"containerPort":81,"hostPort":3000}]}`), client, "TCP host port '3000' is mapped multiple times in task."},
		{"awsvpc container port twice", ec2Task(`"networkMode":"awsvpc"`, `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPort":3000}]}`, `{"name":"b","image":"nginx","memory":128,"portMappings":[{"containerPort":3000}]}`), client, "TCP host port '3000' is mapped multiple times in task."},
		{"udp host port twice", ec2Task(`"networkMode":"host"`, `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPort":53,"protocol":"udp"},{"containerPort":53,"protocol":"udp"}]}`), client, "UDP host port '53' is mapped multiple times in task."},
		{"awsvpc port range overlaps a port", ec2Task(`"networkMode":"awsvpc"`, `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPort":5005},{"containerPortRange":"5000-5010"}]}`), client, "TCP host port '5005' is mapped multiple times in task."},
		{"port range malformed", ec2Task(`"networkMode":"awsvpc"`, `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPortRange":"5000"}]}`), client, "Invalid 'containerPortRange' setting for container 'a'."},
		{"port range reversed", ec2Task(`"networkMode":"awsvpc"`, `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPortRange":"5010-5000"}]}`), client, "Invalid 'containerPortRange' setting for container 'a'."},
		{"port range with container port", ec2Task(`"networkMode":"awsvpc"`, `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPort":80,"containerPortRange":"5000-5010"}]}`), client, "Invalid 'containerPortRange' setting for container 'a'."},
		{"port range in host mode", ec2Task(`"networkMode":"host"`, `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPortRange":"5000-5010"}]}`), client, "Invalid 'containerPortRange' setting for container 'a'."},
		{"port name with capitals", ec2Task("", `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPort":80,"name":"Web"}]}`), client, "Invalid 'name' setting for a port mapping of container 'a'."},
		{"port name repeated across containers", ec2Task("", `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPort":80,"name":"web"}]}`, `{"name":"b","image":"nginx","memory":128,"portMappings":[{"containerPort":81,"name":"web"}]}`), client, "Port mapping names must be unique within a task definition: 'web' is used more than once."},
		{"app protocol without a name", ec2Task("", `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPort":80,"appProtocol":"http"}]}`), client, "Invalid port mapping for container 'a'. 'appProtocol' can only be set together with 'name'."},

		// Network-mode-specific container settings.
		{"links in awsvpc mode", ec2Task(`"networkMode":"awsvpc"`, `{"name":"a","image":"nginx","memory":128,"links":["b"]}`, `{"name":"b","image":"nginx","memory":128}`), client, "Links are not supported when networkMode=awsvpc."},
		{"links in host mode", ec2Task(`"networkMode":"host"`, `{"name":"a","image":"nginx","memory":128,"links":["b"]}`, `{"name":"b","image":"nginx","memory":128}`), client, "Links are not supported when networkMode=host."},
		{"link to an unknown container", ec2Task("", `{"name":"a","image":"nginx","memory":128,"links":["db:mysql"]}`), client, "Invalid 'links' setting for container 'a'. Unknown container 'db'."},
		{"link to itself", ec2Task("", `{"name":"a","image":"nginx","memory":128,"links":["a"]}`), client, "Invalid 'links' setting for container 'a'. Unknown container 'a'."},
		{"hostname in awsvpc mode", ec2Task(`"networkMode":"awsvpc"`, `{"name":"a","image":"nginx","memory":128,"hostname":"web"}`), client, "hostname is not supported on container when networkMode=awsvpc."},

		// Health checks.
		{"health check without command", ec2Task("", `{"name":"a","image":"nginx","memory":128,"healthCheck":{"command":[]}}`), client, "Invalid 'healthCheck' setting for container 'a'. 'command' should not be null or empty."},
		{"health check interval below 5", ec2Task("", `{"name":"a","image":"nginx","memory":128,"healthCheck":{"command":["CMD","true"],"interval":1}}`), client, "Health check interval must be greater than or equal to the minimum allowed value 5 for container 'a'"},
		{"health check interval above 300", ec2Task("", `{"name":"a","image":"nginx","memory":128,"healthCheck":{"command":["CMD","true"],"interval":301}}`), client, "Health check interval must be less than or equal to the maximum allowed value 300 for container 'a'"},
		{"health check timeout below 2", ec2Task("", `{"name":"a","image":"nginx","memory":128,"healthCheck":{"command":["CMD","true"],"timeout":1}}`), client, "Health check timeout must be greater than or equal to the minimum allowed value 2 for container 'a'"},
		{"health check timeout above 120", ec2Task("", `{"name":"a","image":"nginx","memory":128,"healthCheck":{"command":["CMD","true"],"timeout":121}}`), client, "Health check timeout must be less than or equal to the maximum allowed value 120 for container 'a'"},
		{"health check retries zero", ec2Task("", `{"name":"a","image":"nginx","memory":128,"healthCheck":{"command":["CMD","true"],"retries":0}}`), client, "Health check retries must be greater than or equal to the minimum allowed value 1 for container 'a'"},
		{"health check retries above 10", ec2Task("", `{"name":"a","image":"nginx","memory":128,"healthCheck":{"command":["CMD","true"],"retries":11}}`), client, "Health check retries must be less than or equal to the maximum allowed value 10 for container 'a'"},
		{"health check start period negative", ec2Task("", `{"name":"a","image":"nginx","memory":128,"healthCheck":{"command":["CMD","true"],"startPeriod":-1}}`), client, "Health check startPeriod must be greater than or equal to the minimum allowed value 0 for container 'a'"},
		{"health check start period above 300", ec2Task("", `{"name":"a","image":"nginx","memory":128,"healthCheck":{"command":["CMD","true"],"startPeriod":301}}`), client, "Health check startPeriod must be less than or equal to the maximum allowed value 300 for container 'a'"},

		// Container dependencies.
		{"depends on an unknown container", ec2Task("", `{"name":"a","image":"nginx","memory":128,"dependsOn":[{"containerName":"db","condition":"START"}]}`), client, "Cannot depend on container + 'db' because it does not exist"},
		{"depends on itself", ec2Task("", `{"name":"a","image":"nginx","memory":128,"dependsOn":[{"containerName":"a","condition":"START"}]}`), client, "Container dependencies contain a cycle: a -> a."},
		{"dependency cycle of three", ec2Task("",
			`{"name":"a","image":"nginx","memory":128,"dependsOn":[{"containerName":"b","condition":"START"}]}`,
			`{"name":"b","image":"nginx","memory":128,"dependsOn":[{"containerName":"c","condition":"START"}]}`,
			`{"name":"c","image":"nginx","memory":128,"dependsOn":[{"containerName":"a","condition":"START"}]}`), client, "Container dependencies contain a cycle: a -> b -> c -> a."},
		{"SUCCESS on an essential container", ec2Task("", `{"name":"a","image":"nginx","memory":128,"dependsOn":[{"containerName":"init","condition":"SUCCESS"}]}`, `{"name":"init","image":"busybox","memory":16}`), client, "A dependency container with SUCCESS or COMPLETE condition cannot be an essential container"},
		{"COMPLETE on an essential container", ec2Task("", `{"name":"a","image":"nginx","memory":128,"dependsOn":[{"containerName":"init","condition":"COMPLETE"}]}`, `{"name":"init","image":"busybox","memory":16,"essential":true}`), client, "A dependency container with SUCCESS or COMPLETE condition cannot be an essential container"},
		{"HEALTHY on a container without health check", ec2Task("", `{"name":"a","image":"nginx","memory":128,"dependsOn":[{"containerName":"db","condition":"HEALTHY"}]}`, `{"name":"db","image":"postgres","memory":256}`), client, "Container 'a' depends on container 'db' with condition HEALTHY, but 'db' has no health check."},

		// Volumes, mount points, volumesFrom.
		{"mount point of an unknown volume", ec2Task("", `{"name":"a","image":"nginx","memory":128,"mountPoints":[{"sourceVolume":"data","containerPath":"/data"}]}`), client, "Unknown volume 'data'."},
		{"mount point without source volume", ec2Task(`"volumes":[{"name":"data"}]`, `{"name":"a","image":"nginx","memory":128,"mountPoints":[{"containerPath":"/data"}]}`), client, "Unknown volume 'null'."},
		{"mount point without container path", ec2Task(`"volumes":[{"name":"data"}]`, `{"name":"a","image":"nginx","memory":128,"mountPoints":[{"sourceVolume":"data"}]}`), client, "Invalid 'mountPoints' setting for container 'a'. 'containerPath' should not be null or empty."},
		{"volumes from an unknown container", ec2Task("", `{"name":"a","image":"nginx","memory":128,"volumesFrom":[{"sourceContainer":"data"}]}`), client, "Invalid 'volumesFrom' setting for container 'a'. Unknown container 'data'."},
		{"volumes from itself", ec2Task("", `{"name":"a","image":"nginx","memory":128,"volumesFrom":[{"sourceContainer":"a"}]}`), client, "Invalid 'volumesFrom' setting for container 'a'. Unknown container 'a'."},
		{"volume without a name", ec2Task(`"volumes":[{"host":{}}]`), client, "Volume.name should not be null or empty."},
		{"volume name with a slash", ec2Task(`"volumes":[{"name":"a/b"}]`), client, "Volume.name contains invalid characters."},
		{"volume names repeated", ec2Task(`"volumes":[{"name":"data"},{"name":"data"}]`), client, "Volume names must be unique within a Task Definition."},
		{"volume of two types", ec2Task(`"volumes":[{"name":"data","host":{"sourcePath":"/srv"},"dockerVolumeConfiguration":{"scope":"task"}}]`), client, "Volume 'data' can only specify one volume type."},

		// Secrets and logging.
		{"secrets without execution role", ec2Task("", `{"name":"a","image":"nginx","memory":128,"secrets":[{"name":"DB","valueFrom":"/db/url"}]}`), client, "When you are specifying container secrets, you must also specify a value for 'executionRoleArn'."},
		{"log secret options without execution role", ec2Task("", `{"name":"a","image":"nginx","memory":128,"logConfiguration":{"logDriver":"splunk","secretOptions":[{"name":"splunk-token","valueFrom":"/splunk/token"}]}}`), client, "When you are specifying container secrets, you must also specify a value for 'executionRoleArn'."},
		{"awslogs without group", ec2Task("", `{"name":"a","image":"nginx","memory":128,"logConfiguration":{"logDriver":"awslogs","options":{"awslogs-region":"us-east-1"}}}`), client, "Log driver awslogs requires options: awslogs-group"},

		// Task-level extras.
		{"proxy container unknown", ec2Task(`"networkMode":"awsvpc","proxyConfiguration":{"type":"APPMESH","containerName":"envoy"}`), client, "The proxy configuration container 'envoy' is not defined in the task definition."},
		{"ephemeral storage below 21 GiB", fargateTask(`"ephemeralStorage":{"sizeInGiB":20}`), client, "The ephemeral storage size must be between 21 GiB and 200 GiB."},
		{"ephemeral storage above 200 GiB", fargateTask(`"ephemeralStorage":{"sizeInGiB":201}`), client, "The ephemeral storage size must be between 21 GiB and 200 GiB."},
		{"EXTERNAL with awsvpc", ec2Task(`"networkMode":"awsvpc","requiresCompatibilities":["EXTERNAL"]`), client, "Task definitions that require EXTERNAL compatibility do not support networkMode 'awsvpc'."},

		// Tags.
		{"tag key with aws prefix", ec2Task(`"tags":[{"key":"aws:owner","value":"me"}]`), param, "Tag keys with the prefix 'aws:' are reserved for AWS use."},
		{"tag key with AWS prefix in capitals", ec2Task(`"tags":[{"key":"AWS:owner","value":"me"}]`), param, "Tag keys with the prefix 'aws:' are reserved for AWS use."},

		// Size.
		{"definition above 64 KiB", ec2Task("", `{"name":"app","image":"nginx","memory":128,"environment":[{"name":"BIG","value":"`+strings.Repeat("x", 70000)+`"}]}`), client, "Actual length: '70127'. Max allowed length is '65536' bytes."},

		// Fargate.
		{"FARGATE without network mode", ec2Task(`"requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512"`), client, "Fargate only supports network mode ‘awsvpc’."},
		{"FARGATE in bridge mode", ec2Task(`"networkMode":"bridge","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512"`), client, "Fargate only supports network mode ‘awsvpc’."},
		{"FARGATE without task cpu", ec2Task(`"networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"memory":"512"`), client, "Fargate requires that 'cpu' be defined at the task level."},
		{"FARGATE without task memory", ec2Task(`"networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"256"`), client, "Fargate requires that 'memory' be defined at the task level."},
		{"FARGATE size not offered", ec2Task(`"networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"1024","memory":"1024"`), client, "No Fargate configuration exists for given values: 1024 CPU, 1024 memory. See the Amazon ECS documentation for the valid values."},
		{"FARGATE cpu not in table", ec2Task(`"networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"300","memory":"1024"`), client, "No Fargate configuration exists for given values: 300 CPU, 1024 memory. See the Amazon ECS documentation for the valid values."},
		{"FARGATE 8 vCPU memory off the 4 GB step", ec2Task(`"networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"8 vCPU","memory":"18 GB"`), client, "No Fargate configuration exists for given values: 8192 CPU, 18432 memory. See the Amazon ECS documentation for the valid values."},
		{"FARGATE Windows below 1 vCPU", fargateTask(`"runtimePlatform":{"operatingSystemFamily":"WINDOWS_SERVER_2022_CORE"}`), client, "No Fargate configuration exists for given values: 256 CPU, 512 memory. See the Amazon ECS documentation for the valid values."},
		{"FARGATE host port differs", fargateTask("", `{"name":"app","image":"nginx","portMappings":[{"containerPort":80,"hostPort":8080}]}`), client, "When networkMode=awsvpc, the host ports and container ports in port mappings must match."},
		{"FARGATE privileged", fargateTask("", `{"name":"app","image":"nginx","privileged":true}`), client, "Fargate compatible task definitions do not support privileged"},
		{"FARGATE pidMode host", fargateTask(`"pidMode":"host"`), client, "Tasks using the Fargate launch type do not support pidMode 'host'. The supported value for pidMode is 'task'."},
		{"FARGATE ipcMode", fargateTask(`"ipcMode":"task"`), client, "Tasks using the Fargate launch type do not support ipcMode."},
		{"FARGATE host volume source path", fargateTask(`"volumes":[{"name":"data","host":{"sourcePath":"/srv"}}]`), client, "Fargate compatible task definitions do not support sourcePath"},
		{"FARGATE docker volume", fargateTask(`"volumes":[{"name":"data","dockerVolumeConfiguration":{"scope":"task"}}]`), client, "Fargate compatible task definitions do not support dockerVolumeConfiguration"},
		{"FARGATE awslogs without region", fargateTask("", `{"name":"app","image":"nginx","logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"g"}}}`), client, "Log driver awslogs requires options: awslogs-region"},
		{"FARGATE adds SYS_ADMIN", fargateTask("", `{"name":"app","image":"nginx","linuxParameters":{"capabilities":{"add":["SYS_ADMIN"]}}}`), client, "Fargate compatible task definitions only support adding the SYS_PTRACE kernel capability: container 'app' adds SYS_ADMIN."},
		{"FARGATE device", fargateTask("", `{"name":"app","image":"nginx","linuxParameters":{"devices":[{"hostPath":"/dev/fuse"}]}}`), client, "Fargate compatible task definitions do not support devices"},
		{"FARGATE tmpfs", fargateTask("", `{"name":"app","image":"nginx","linuxParameters":{"tmpfs":[{"containerPath":"/t","size":10}]}}`), client, "Fargate compatible task definitions do not support tmpfs"},
		{"FARGATE maxSwap", fargateTask("", `{"name":"app","image":"nginx","linuxParameters":{"maxSwap":10}}`), client, "Fargate compatible task definitions do not support maxSwap"},
		{"FARGATE docker security options", fargateTask("", `{"name":"app","image":"nginx","dockerSecurityOptions":["label:disable"]}`), client, "Fargate compatible task definitions do not support dockerSecurityOptions"},
		{"FARGATE host sysctl", fargateTask("", `{"name":"app","image":"nginx","systemControls":[{"namespace":"vm.swappiness","value":"1"}]}`), client, "Fargate compatible task definitions do not support the systemControls namespace 'vm.swappiness'. Fargate supports namespaced kernel parameters (net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) only."},
		{"FARGATE links", fargateTask("", `{"name":"app","image":"nginx","links":["db"]}`, `{"name":"db","image":"nginx"}`), client, "Links are not supported when networkMode=awsvpc."},
		{"FARGATE Windows ARM64", fargateTask(`"cpu":"1024","memory":"2048","runtimePlatform":{"operatingSystemFamily":"WINDOWS_SERVER_2022_CORE","cpuArchitecture":"ARM64"}`), client, "Fargate does not support the ARM64 CPU architecture for Windows containers."},
		{"FARGATE awslogs without options", fargateTask("", `{"name":"app","image":"nginx","logConfiguration":{"logDriver":"awslogs"}}`), client, "Log driver awslogs requires options: awslogs-region, awslogs-group"},
		{"FARGATE awslogs without execution role", ec2Task(`"networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512"`, `{"name":"app","image":"nginx","logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"g","awslogs-region":"us-east-1"}}}`), client, "Fargate requires task definition to have execution role ARN to support log driver awslogs."},
		{"FARGATE ECR image without execution role", ec2Task(`"networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512"`, `{"name":"app","image":"123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1"}`), client, "Fargate requires task definition to have execution role ARN to support ECR images."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			td, err := build(t, tc.in)
			if err == nil {
				t.Fatalf("Build accepted the definition: %s", mustJSON(t, td))
			}
			if k := errs.KindOf(err); k != errs.Invalid {
				t.Errorf("kind = %v, want invalid", k)
			}
			if r := errs.ReasonOf(err); r != tc.reason {
				t.Errorf("reason = %q, want %q", r, tc.reason)
			}
			if m := errs.MessageOf(err); m != tc.msg {
				t.Errorf("message:\n got %q\nwant %q", m, tc.msg)
			}
		})
	}
}

func elevenContainers() []string {
	out := make([]string, 11)
	for i := range out {
		out[i] = `{"name":"c` + string(rune('a'+i)) + `","image":"nginx","memory":16}`
	}
	return out
}

func TestBuildAccepts(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"minimal EC2 definition", ec2Task("")},
		{"family of 255 characters", `{"family":"` + strings.Repeat("f", 255) + `","containerDefinitions":[` + app + `]}`},
		{"family with hyphens and underscores", `{"family":"My-web_2","containerDefinitions":[` + app + `]}`},
		{"ten containers", ec2Task("", elevenContainers()[:10]...)},
		{"image with digest", ec2Task("", `{"name":"app","image":"nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31","memory":128}`)},
		{"one essential of two", ec2Task("", `{"name":"a","image":"nginx","memory":128,"essential":false}`, `{"name":"b","image":"nginx","memory":128}`)},
		{"task memory instead of container memory", ec2Task(`"memory":"512"`, `{"name":"app","image":"nginx"}`)},
		{"memory reservation only", ec2Task("", `{"name":"app","image":"nginx","memoryReservation":64}`)},
		{"memory equal to reservation", ec2Task("", `{"name":"app","image":"nginx","memory":64,"memoryReservation":64}`)},
		{"memory at minimum", ec2Task("", `{"name":"app","image":"nginx","memory":6}`)},
		{"container memory equal to task memory", ec2Task(`"memory":"0.5GB"`, `{"name":"app","image":"nginx","memory":512}`)},
		{"task cpu at EC2 minimum with large task memory", ec2Task(`"cpu":"0.125 vCPU","memory":"196608"`)},
		{"task cpu at EC2 maximum", ec2Task(`"cpu":"192 vCPU"`)},
		{"container cpu equal to task cpu", ec2Task(`"cpu":"256"`, `{"name":"app","image":"nginx","memory":128,"cpu":256}`)},
		{"bridge dynamic host ports on the same container port", ec2Task("", `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPort":80}]}`, `{"name":"b","image":"nginx","memory":128,"portMappings":[{"containerPort":80,"hostPort":0}]}`)},
		{"same port for tcp and udp", ec2Task(`"networkMode":"host"`, `{"name":"a","image":"coredns","memory":128,"portMappings":[{"containerPort":53,"protocol":"tcp"},{"containerPort":53,"protocol":"udp"}]}`)},
		{"awsvpc host port equal to container port", ec2Task(`"networkMode":"awsvpc"`, `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPort":80,"hostPort":80}]}`)},
		{"awsvpc host port zero", ec2Task(`"networkMode":"awsvpc"`, `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPort":80,"hostPort":0}]}`)},
		{"port range in bridge mode", ec2Task("", `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPortRange":"5000-5010"},{"containerPortRange":"5000-5010","protocol":"udp"}]}`)},
		{"port name and app protocol", ec2Task("", `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPort":80,"name":"web-80_tcp","appProtocol":"grpc"}]}`)},
		{"links with alias in bridge mode", ec2Task(`"networkMode":"bridge"`, `{"name":"a","image":"nginx","memory":128,"links":["b:db"]}`, `{"name":"b","image":"nginx","memory":128}`)},
		{"links with default network mode", ec2Task("", `{"name":"a","image":"nginx","memory":128,"links":["b"]}`, `{"name":"b","image":"nginx","memory":128}`)},
		{"hostname in bridge mode", ec2Task("", `{"name":"a","image":"nginx","memory":128,"hostname":"web"}`)},
		{"health check at bounds", ec2Task("", `{"name":"a","image":"nginx","memory":128,"healthCheck":{"command":["CMD","true"],"interval":5,"timeout":120,"retries":10,"startPeriod":0}}`)},
		{"health check at upper bounds", ec2Task("", `{"name":"a","image":"nginx","memory":128,"healthCheck":{"command":["CMD","true"],"interval":300,"timeout":2,"retries":1,"startPeriod":300}}`)},
		{"SUCCESS on a non-essential container", ec2Task("", `{"name":"a","image":"nginx","memory":128,"dependsOn":[{"containerName":"init","condition":"SUCCESS"}]}`, `{"name":"init","image":"busybox","memory":16,"essential":false}`)},
		{"START on an essential container", ec2Task("", `{"name":"a","image":"nginx","memory":128,"dependsOn":[{"containerName":"b","condition":"START"}]}`, `{"name":"b","image":"nginx","memory":128}`)},
		{"HEALTHY on a container with health check", ec2Task("", `{"name":"a","image":"nginx","memory":128,"dependsOn":[{"containerName":"b","condition":"HEALTHY"}]}`, `{"name":"b","image":"nginx","memory":128,"healthCheck":{"command":["CMD","true"]}}`)},
		{"diamond of dependencies", ec2Task("",
			`{"name":"a","image":"nginx","memory":128,"dependsOn":[{"containerName":"b","condition":"START"},{"containerName":"c","condition":"START"}]}`,
			`{"name":"b","image":"nginx","memory":128,"dependsOn":[{"containerName":"d","condition":"START"}]}`,
			`{"name":"c","image":"nginx","memory":128,"dependsOn":[{"containerName":"d","condition":"START"}]}`,
			`{"name":"d","image":"nginx","memory":128}`)},
		{"duplicate environment names", ec2Task("", `{"name":"a","image":"nginx","memory":128,"environment":[{"name":"X","value":"1"},{"name":"X","value":"2"}]}`)},
		{"bind mount without source path", ec2Task(`"volumes":[{"name":"scratch","host":{}}]`, `{"name":"a","image":"nginx","memory":128,"mountPoints":[{"sourceVolume":"scratch","containerPath":"/scratch"}]}`)},
		{"awslogs without region on EC2", ec2Task("", `{"name":"a","image":"nginx","memory":128,"logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"g"}}}`)},
		{"secrets with execution role", ec2Task(`"executionRoleArn":"arn:aws:iam::123456789012:role/exec"`, `{"name":"a","image":"nginx","memory":128,"secrets":[{"name":"DB","valueFrom":"/db/url"}]}`)},
		{"fifty tags", ec2Task(`"tags":[` + strings.TrimSuffix(strings.Repeat(`{"key":"k","value":"v"},`, 50), ",") + `]`)},
		{"FARGATE minimal", fargateTask("")},
		{"FARGATE adds SYS_PTRACE and drops ALL", fargateTask("", `{"name":"app","image":"nginx","linuxParameters":{"capabilities":{"add":["SYS_PTRACE"],"drop":["ALL"]},"initProcessEnabled":true}}`)},
		{"FARGATE Linux ARM64", fargateTask(`"runtimePlatform":{"operatingSystemFamily":"LINUX","cpuArchitecture":"ARM64"}`)},
		{"FARGATE namespaced sysctl", fargateTask("", `{"name":"app","image":"nginx","systemControls":[{"namespace":"net.ipv4.tcp_keepalive_time","value":"60"}]}`)},
		{"FARGATE largest size", ec2Task(`"networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"16 vCPU","memory":"120 GB"`, `{"name":"app","image":"nginx"}`)},
		{"FARGATE 2 vCPU with 5 GB", ec2Task(`"networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"2048","memory":"5120"`, `{"name":"app","image":"nginx"}`)},
		{"FARGATE Windows at 1 vCPU", ec2Task(`"networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"1024","memory":"2048","runtimePlatform":{"operatingSystemFamily":"WINDOWS_SERVER_2022_CORE"}`, `{"name":"app","image":"mcr.microsoft.com/windows/servercore/iis"}`)},
		{"FARGATE and EC2", fargateTask(`"requiresCompatibilities":["FARGATE","EC2"]`)},
		{"FARGATE public ECR image without execution role", ec2Task(`"networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"256","memory":"512"`, `{"name":"app","image":"public.ecr.aws/nginx/nginx:latest"}`)},
		{"FARGATE bind mount without source path", fargateTask(`"volumes":[{"name":"scratch","host":{}}]`)},
		{"EXTERNAL in bridge mode", ec2Task(`"requiresCompatibilities":["EXTERNAL"]`)},
		{"ephemeral storage at bounds", fargateTask(`"ephemeralStorage":{"sizeInGiB":200}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := build(t, tc.in); err != nil {
				t.Fatalf("Build: %v (reason %q)", err, errs.ReasonOf(err))
			}
		})
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBuildFillsDefaults checks the members ECS fills in, against the
// exact JSON DescribeTaskDefinition would show.
func TestBuildFillsDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the whole output, compact
	}{
		{
			name: "minimal EC2 definition",
			in:   ec2Task(""),
			want: `{"compatibilities":["EC2"],"containerDefinitions":[{"cpu":0,"environment":[],"essential":true,"image":"nginx","memory":128,"mountPoints":[],"name":"app","portMappings":[],"systemControls":[],"volumesFrom":[]}],` +
				`"family":"web","placementConstraints":[],"registeredAt":1741064767.89,"registeredBy":"arn:aws:iam::123456789012:user/dev","requiresAttributes":[],"revision":3,"status":"ACTIVE",` +
				`"taskDefinitionArn":"arn:aws:ecs:us-east-1:123456789012:task-definition/test:3","volumes":[]}`,
		},
		{
			name: "bridge port mappings get tcp and host port 0",
			in:   ec2Task(`"networkMode":"bridge"`, `{"name":"app","image":"nginx","memory":128,"portMappings":[{"containerPort":80},{"containerPort":53,"hostPort":5353,"protocol":"udp"}]}`),
			want: `{"compatibilities":["EC2"],"containerDefinitions":[{"cpu":0,"environment":[],"essential":true,"image":"nginx","memory":128,"mountPoints":[],"name":"app",` +
				`"portMappings":[{"containerPort":80,"hostPort":0,"protocol":"tcp"},{"containerPort":53,"hostPort":5353,"protocol":"udp"}],"systemControls":[],"volumesFrom":[]}],` +
				`"family":"web","networkMode":"bridge","placementConstraints":[],"registeredAt":1741064767.89,"registeredBy":"arn:aws:iam::123456789012:user/dev","requiresAttributes":[],"revision":3,"status":"ACTIVE",` +
				`"taskDefinitionArn":"arn:aws:ecs:us-east-1:123456789012:task-definition/test:3","volumes":[]}`,
		},
		{
			name: "Fargate cpu and memory normalised, host port filled, health check defaults",
			in: ec2Task(`"networkMode":"awsvpc","requiresCompatibilities":["FARGATE"],"cpu":"0.5 vCPU","memory":"1 GB"`,
				`{"name":"app","image":"nginx","essential":false,"cpu":10,"portMappings":[{"containerPort":8080,"hostPort":0}],"healthCheck":{"command":["CMD","true"]}}`,
				`{"name":"side","image":"busybox","environment":[{"name":"A","value":"1"}]}`),
			want: `{"compatibilities":["EC2","FARGATE"],"containerDefinitions":[` +
				`{"cpu":10,"environment":[],"essential":false,"healthCheck":{"command":["CMD","true"],"interval":30,"retries":3,"timeout":5},"image":"nginx","mountPoints":[],"name":"app","portMappings":[{"containerPort":8080,"hostPort":8080,"protocol":"tcp"}],"systemControls":[],"volumesFrom":[]},` +
				`{"cpu":0,"environment":[{"name":"A","value":"1"}],"essential":true,"image":"busybox","mountPoints":[],"name":"side","portMappings":[],"systemControls":[],"volumesFrom":[]}],` +
				`"cpu":"512","family":"web","memory":"1024","networkMode":"awsvpc","placementConstraints":[],"registeredAt":1741064767.89,"registeredBy":"arn:aws:iam::123456789012:user/dev",` +
				`"requiresAttributes":[{"name":"com.amazonaws.ecs.capability.docker-remote-api.1.24"},{"name":"ecs.capability.container-health-check"},{"name":"ecs.capability.task-eni"}],` +
				`"requiresCompatibilities":["FARGATE"],"revision":3,"status":"ACTIVE","taskDefinitionArn":"arn:aws:ecs:us-east-1:123456789012:task-definition/test:3","volumes":[]}`,
		},
		{
			name: "EFS root directory defaults to slash",
			in:   ec2Task(`"volumes":[{"name":"shared","efsVolumeConfiguration":{"fileSystemId":"fs-1"}}]`),
			want: `{"compatibilities":["EC2"],"containerDefinitions":[{"cpu":0,"environment":[],"essential":true,"image":"nginx","memory":128,"mountPoints":[],"name":"app","portMappings":[],"systemControls":[],"volumesFrom":[]}],` +
				`"family":"web","placementConstraints":[],"registeredAt":1741064767.89,"registeredBy":"arn:aws:iam::123456789012:user/dev",` +
				`"requiresAttributes":[{"name":"com.amazonaws.ecs.capability.docker-remote-api.1.25"},{"name":"ecs.capability.efs"},{"name":"ecs.capability.efsAuth"}],"revision":3,"status":"ACTIVE",` +
				`"taskDefinitionArn":"arn:aws:ecs:us-east-1:123456789012:task-definition/test:3","volumes":[{"efsVolumeConfiguration":{"fileSystemId":"fs-1","rootDirectory":"/"},"name":"shared"}]}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			td, err := build(t, tc.in)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if got := mustJSON(t, td); got != tc.want {
				t.Errorf("output:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestBuildKeepsGivenEmptyAndExplicitValues(t *testing.T) {
	td, err := build(t, ec2Task("", `{"name":"app","image":"nginx","memory":128,"cpu":5,"essential":true,"links":[],"entryPoint":[],"dockerLabels":{}}`))
	if err != nil {
		t.Fatal(err)
	}
	c := td.ContainerDefinitions[0]
	if c.Links == nil || c.EntryPoint == nil || c.DockerLabels == nil {
		t.Errorf("given empty members were dropped: %s", mustJSON(t, c))
	}
	if deref(c.Cpu) != 5 {
		t.Errorf("cpu = %d, want 5", deref(c.Cpu))
	}
	if c.Secrets != nil || c.Ulimits != nil || td.RequiresCompatibilities != nil || td.NetworkMode != nil || td.Cpu != nil {
		t.Errorf("members that were not given appeared: %s", mustJSON(t, td))
	}
}

func TestBuildDoesNotModifyInput(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "fargate-web.json"))
	if err != nil {
		t.Fatal(err)
	}
	in := decode(t, string(raw))
	before := mustJSON(t, in)
	td, err := Build(in, testOpts)
	if err != nil {
		t.Fatal(err)
	}
	if after := mustJSON(t, in); after != before {
		t.Errorf("Build changed its input:\nbefore %s\nafter  %s", before, after)
	}
	// The output shares no memory with the input.
	td.ContainerDefinitions[0].PortMappings[0].ContainerPort = ptr(int32(1))
	td.ContainerDefinitions[1].Environment[0].Value = ptr("changed")
	if after := mustJSON(t, in); after != before {
		t.Errorf("the output aliases the input")
	}
}

func TestRequiresAttributes(t *testing.T) {
	const execRole = `"executionRoleArn":"arn:aws:iam::123456789012:role/exec"`
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"plain bridge definition", ec2Task(""), nil},
		{"task role", ec2Task(`"taskRoleArn":"arn:aws:iam::123456789012:role/t"`), []string{"com.amazonaws.ecs.capability.task-iam-role"}},
		{"task role in host mode", ec2Task(`"taskRoleArn":"arn:aws:iam::123456789012:role/t","networkMode":"host"`),
			[]string{"com.amazonaws.ecs.capability.task-iam-role", "com.amazonaws.ecs.capability.task-iam-role-network-host"}},
		{"awsvpc", ec2Task(`"networkMode":"awsvpc"`), []string{"ecs.capability.task-eni"}},
		{"awslogs with execution role", ec2Task(execRole, `{"name":"a","image":"nginx","memory":128,"logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"g"}}}`),
			[]string{"com.amazonaws.ecs.capability.docker-remote-api.1.18", "com.amazonaws.ecs.capability.docker-remote-api.1.19", "com.amazonaws.ecs.capability.logging-driver.awslogs", "ecs.capability.execution-role-awslogs"}},
		{"log driver without options", ec2Task("", `{"name":"a","image":"nginx","memory":128,"logConfiguration":{"logDriver":"syslog"}}`),
			[]string{"com.amazonaws.ecs.capability.docker-remote-api.1.18", "com.amazonaws.ecs.capability.logging-driver.syslog"}},
		{"log mode option", ec2Task("", `{"name":"a","image":"nginx","memory":128,"logConfiguration":{"logDriver":"json-file","options":{"mode":"non-blocking"}}}`),
			[]string{"com.amazonaws.ecs.capability.docker-remote-api.1.18", "com.amazonaws.ecs.capability.docker-remote-api.1.19", "com.amazonaws.ecs.capability.docker-remote-api.1.28", "com.amazonaws.ecs.capability.logging-driver.json-file"}},
		{"ECR image without execution role", ec2Task("", `{"name":"a","image":"123456789012.dkr.ecr.us-east-1.amazonaws.com/a:1","memory":128}`), []string{"com.amazonaws.ecs.capability.ecr-auth"}},
		{"ECR image with execution role", ec2Task(execRole, `{"name":"a","image":"123456789012.dkr.ecr.us-east-1.amazonaws.com/a:1","memory":128}`),
			[]string{"com.amazonaws.ecs.capability.ecr-auth", "ecs.capability.execution-role-ecr-pull"}},
		{"public ECR image", ec2Task(execRole, `{"name":"a","image":"public.ecr.aws/nginx/nginx","memory":128}`), nil},
		{"memory reservation", ec2Task("", `{"name":"a","image":"nginx","memoryReservation":128}`), []string{"com.amazonaws.ecs.capability.docker-remote-api.1.21"}},
		{"docker labels and ulimits", ec2Task("", `{"name":"a","image":"nginx","memory":128,"dockerLabels":{"a":"b"},"ulimits":[{"name":"nofile","softLimit":1,"hardLimit":2}]}`),
			[]string{"com.amazonaws.ecs.capability.docker-remote-api.1.18"}},
		{"health check without start period", ec2Task("", `{"name":"a","image":"nginx","memory":128,"healthCheck":{"command":["CMD","true"]}}`),
			[]string{"com.amazonaws.ecs.capability.docker-remote-api.1.24", "ecs.capability.container-health-check"}},
		{"health check with start period", ec2Task("", `{"name":"a","image":"nginx","memory":128,"healthCheck":{"command":["CMD","true"],"startPeriod":10}}`),
			[]string{"com.amazonaws.ecs.capability.docker-remote-api.1.29", "ecs.capability.container-health-check"}},
		{"dependsOn", ec2Task("", `{"name":"a","image":"nginx","memory":128,"dependsOn":[{"containerName":"b","condition":"START"}]}`, `{"name":"b","image":"nginx","memory":128}`),
			[]string{"ecs.capability.container-ordering"}},
		{"stop timeout", ec2Task("", `{"name":"a","image":"nginx","memory":128,"stopTimeout":10}`), []string{"ecs.capability.container-ordering"}},
		{"secrets from both stores", ec2Task(execRole, `{"name":"a","image":"nginx","memory":128,"secrets":[{"name":"A","valueFrom":"arn:aws:secretsmanager:us-east-1:123456789012:secret:a"},{"name":"B","valueFrom":"arn:aws:ssm:us-east-1:123456789012:parameter/b"}]}`),
			[]string{"ecs.capability.secrets.asm.environment-variables", "ecs.capability.secrets.ssm.environment-variables"}},
		{"log secret options", ec2Task(execRole, `{"name":"a","image":"nginx","memory":128,"logConfiguration":{"logDriver":"splunk","secretOptions":[{"name":"splunk-token","valueFrom":"/t"}]}}`),
			[]string{"com.amazonaws.ecs.capability.docker-remote-api.1.18", "com.amazonaws.ecs.capability.logging-driver.splunk", "ecs.capability.secrets.ssm.bootstrap.log-driver"}},
		{"private registry credentials", ec2Task(execRole, `{"name":"a","image":"registry.example.com/a","memory":128,"repositoryCredentials":{"credentialsParameter":"arn:aws:secretsmanager:us-east-1:123456789012:secret:r"}}`),
			[]string{"ecs.capability.private-registry-authentication.secretsmanager"}},
		{"environment files", ec2Task("", `{"name":"a","image":"nginx","memory":128,"environmentFiles":[{"value":"arn:aws:s3:::b/a.env","type":"s3"}]}`), []string{"ecs.capability.env-files.s3"}},
		{"firelens with S3 config", ec2Task("", `{"name":"a","image":"fluent-bit","memory":128,"firelensConfiguration":{"type":"fluentbit","options":{"config-file-type":"s3","config-file-value":"arn:aws:s3:::b/c.conf"}}}`),
			[]string{"ecs.capability.firelens.fluentbit", "ecs.capability.firelens.options.config.s3"}},
		{"privileged and security options", ec2Task("", `{"name":"a","image":"nginx","memory":128,"privileged":true,"dockerSecurityOptions":["label:type:svirt_apache_t","apparmor:docker-default","no-new-privileges"]}`),
			[]string{"com.amazonaws.ecs.capability.apparmor", "com.amazonaws.ecs.capability.privileged-container", "com.amazonaws.ecs.capability.selinux"}},
		{"init process and shared memory", ec2Task("", `{"name":"a","image":"nginx","memory":128,"linuxParameters":{"initProcessEnabled":true,"sharedMemorySize":64}}`),
			[]string{"com.amazonaws.ecs.capability.docker-remote-api.1.22", "com.amazonaws.ecs.capability.docker-remote-api.1.25"}},
		{"pid and ipc modes", ec2Task(`"pidMode":"task","ipcMode":"host"`), []string{"ecs.capability.pid-ipc-namespace-sharing"}},
		{"docker volume with default driver", ec2Task(`"volumes":[{"name":"v","dockerVolumeConfiguration":{"scope":"task"}}]`), []string{"ecs.capability.docker-plugin.local"}},
		{"docker volume with a plugin", ec2Task(`"volumes":[{"name":"v","dockerVolumeConfiguration":{"scope":"shared","driver":"rexray/ebs"}}]`), []string{"ecs.capability.docker-plugin.rexray/ebs"}},
		{"FSx volume", ec2Task(`"volumes":[{"name":"v","fsxWindowsFileServerVolumeConfiguration":{"fileSystemId":"fs-1","rootDirectory":"share","authorizationConfig":{"credentialsParameter":"arn:aws:secretsmanager:us-east-1:123456789012:secret:c","domain":"example.com"}}}]`),
			[]string{"ecs.capability.fsxWindowsFileServer"}},
		{"app mesh proxy", ec2Task(`"networkMode":"awsvpc","proxyConfiguration":{"type":"APPMESH","containerName":"app"}`), []string{"ecs.capability.aws-appmesh", "ecs.capability.task-eni"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			td, err := build(t, tc.in)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			var got []string
			for _, a := range td.RequiresAttributes {
				if a.Value != nil || a.TargetId != nil || a.TargetType != nil {
					t.Errorf("attribute %s has more than a name", mustJSON(t, a))
				}
				got = append(got, deref(a.Name))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("requiresAttributes:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestCompatibilities(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []ecsapi.Compatibility
	}{
		{"bridge definition", ec2Task(""), []ecsapi.Compatibility{"EC2"}},
		{"FARGATE required", fargateTask(""), []ecsapi.Compatibility{"EC2", "FARGATE"}},
		{"awsvpc with a Fargate size, not required", ec2Task(`"networkMode":"awsvpc","cpu":"256","memory":"512"`), []ecsapi.Compatibility{"EC2", "FARGATE"}},
		{"awsvpc with a size Fargate lacks", ec2Task(`"networkMode":"awsvpc","cpu":"256","memory":"4096"`), []ecsapi.Compatibility{"EC2"}},
		{"awsvpc without task size", ec2Task(`"networkMode":"awsvpc"`), []ecsapi.Compatibility{"EC2"}},
		{"Fargate-sized but privileged", ec2Task(`"networkMode":"awsvpc","cpu":"256","memory":"512"`, `{"name":"app","image":"nginx","privileged":true}`), []ecsapi.Compatibility{"EC2"}},
		{"EXTERNAL required", ec2Task(`"requiresCompatibilities":["EXTERNAL"]`), []ecsapi.Compatibility{"EC2", "EXTERNAL"}},
		{"MANAGED_INSTANCES required", ec2Task(`"networkMode":"awsvpc","requiresCompatibilities":["MANAGED_INSTANCES"]`), []ecsapi.Compatibility{"EC2", "MANAGED_INSTANCES"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			td, err := build(t, tc.in)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if !reflect.DeepEqual(td.Compatibilities, tc.want) {
				t.Errorf("compatibilities = %v, want %v", td.Compatibilities, tc.want)
			}
		})
	}
}

// TestGolden builds every testdata/*.json request (real-world shaped task
// definitions) and compares the result with testdata/*.golden.json.
// Run with -update to rewrite the golden files.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, path := range inputs {
		if strings.HasSuffix(path, ".golden.json") {
			continue
		}
		n++
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			td, err := build(t, string(raw))
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			got, err := json.MarshalIndent(td, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(path, ".json") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from Build's output (run go test -update after checking the change):\n%s", golden, got)
			}
			// What Build returns must survive the trip through the wire.
			var back ecsapi.TaskDefinition
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatalf("output does not decode: %v", err)
			}
			if again, _ := json.MarshalIndent(&back, "", "  "); !bytes.Equal(append(again, '\n'), got) {
				t.Errorf("output does not round-trip")
			}
		})
	}
	if n < 3 {
		t.Fatalf("found %d real-world task definitions in testdata, want at least 3", n)
	}
}

// FuzzBuild feeds arbitrary JSON, decoded as a request, to Build: it must
// never panic, and what it accepts must be a complete task definition.
func FuzzBuild(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, path := range inputs {
		if raw, err := os.ReadFile(path); err == nil && !strings.HasSuffix(path, ".golden.json") {
			f.Add(raw)
		}
	}
	for _, s := range []string{
		ec2Task(""), fargateTask(""), `{}`, `{"family":"x","containerDefinitions":[{}]}`,
		`{"family":"x","containerDefinitions":[{"name":"a","dependsOn":[{}],"portMappings":[{}],"mountPoints":[{}],"volumesFrom":[{}],"healthCheck":{},"logConfiguration":{}}],"volumes":[{}],"proxyConfiguration":{},"ephemeralStorage":{},"runtimePlatform":{}}`,
		ec2Task(`"networkMode":"awsvpc"`, `{"name":"a","image":"nginx","memory":128,"portMappings":[{"containerPortRange":"1-65535"},{"containerPortRange":"1-65535"}]}`),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var in ecsapi.RegisterTaskDefinitionRequest
		if json.Unmarshal(data, &in) != nil {
			return
		}
		td, err := Build(&in, testOpts)
		if err != nil {
			if errs.KindOf(err) != errs.Invalid || errs.MessageOf(err) == "" {
				t.Fatalf("error %v has kind %v", err, errs.KindOf(err))
			}
			if r := errs.ReasonOf(err); r != ReasonClient && r != ReasonParam {
				t.Fatalf("error %v has reason %q", err, r)
			}
			return
		}
		if td.Status == nil || td.Revision == nil || len(td.ContainerDefinitions) == 0 || len(td.Compatibilities) == 0 {
			t.Fatalf("incomplete task definition: %s", mustJSON(t, td))
		}
		for _, c := range td.ContainerDefinitions {
			if c.Essential == nil || c.Cpu == nil || c.PortMappings == nil {
				t.Fatalf("defaults not filled: %s", mustJSON(t, c))
			}
		}
		if _, err := json.Marshal(td); err != nil {
			t.Fatalf("output does not encode: %v", err)
		}
	})
}
