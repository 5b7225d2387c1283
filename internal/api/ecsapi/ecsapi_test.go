package ecsapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/awsproto"
)

// decode runs what the front door runs on a request body: DecodeJSON, then
// Validate.
func decode[T any, P interface {
	*T
	Validate() error
}](t *testing.T, body string) (P, error) {
	t.Helper()
	in := P(new(T))
	if err := awsproto.DecodeJSON([]byte(body), in); err != nil {
		return in, err
	}
	return in, in.Validate()
}

const goodTaskDefinition = `{
  "family": "web",
  "networkMode": "awsvpc",
  "requiresCompatibilities": ["EC2", "FARGATE"],
  "cpu": "256",
  "memory": "512",
  "containerDefinitions": [{
    "name": "app",
    "image": "nginx:1.27",
    "essential": true,
    "memory": 128,
    "environment": [],
    "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}],
    "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
    "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 30},
    "dockerLabels": {"team": "a"}
  }],
  "tags": [{"key": "env", "value": "dev"}]
}`

func TestRegisterTaskDefinitionGood(t *testing.T) {
	in, err := decode[ecsapi.RegisterTaskDefinitionRequest](t, goodTaskDefinition)
	if err != nil {
		t.Fatalf("decode and validate: %v", err)
	}
	if *in.Family != "web" || *in.NetworkMode != ecsapi.NetworkModeAwsvpc {
		t.Errorf("family %q networkMode %q", *in.Family, *in.NetworkMode)
	}
	c := in.ContainerDefinitions[0]
	if *c.Name != "app" || *c.Memory != 128 || !*c.Essential || *c.PortMappings[0].ContainerPort != 80 {
		t.Errorf("container definition decoded wrong: %+v", c)
	}
	if c.Environment == nil || len(c.Environment) != 0 {
		t.Errorf("environment: want a non-nil empty list, got %#v", c.Environment)
	}
	if c.Cpu != nil {
		t.Errorf("absent cpu decoded as %v", *c.Cpu)
	}
	if *c.DependsOn[0].Condition != ecsapi.ContainerConditionSuccess {
		t.Errorf("dependsOn condition %q", *c.DependsOn[0].Condition)
	}
}

func TestValidationMessages(t *testing.T) {
	compat := ecsapi.Compatibility("").Values()
	compatSet := make([]string, len(compat))
	for i, c := range compat {
		compatSet[i] = string(c)
	}
	tests := []struct {
		name string
		body string
		want []string // problems, in order
	}{
		{
			name: "required members missing",
			body: `{}`,
			want: []string{
				"Value null at 'containerDefinitions' failed to satisfy constraint: Member must not be null",
				"Value null at 'family' failed to satisfy constraint: Member must not be null",
			},
		},
		{
			name: "explicit null is missing",
			body: `{"family": null, "containerDefinitions": []}`,
			want: []string{"Value null at 'family' failed to satisfy constraint: Member must not be null"},
		},
		{
			name: "bad enum",
			body: `{"family": "f", "containerDefinitions": [], "networkMode": "foo"}`,
			want: []string{"Value 'foo' at 'networkMode' failed to satisfy constraint: Member must satisfy enum value set: [bridge, host, awsvpc, none]"},
		},
		{
			name: "enum in a list",
			body: `{"family": "f", "containerDefinitions": [], "requiresCompatibilities": ["EC2", "BOGUS"]}`,
			want: []string{"Value '[EC2, BOGUS]' at 'requiresCompatibilities' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [" + strings.Join(compatSet, ", ") + "]]"},
		},
		{
			name: "nested required member, 1-based paths",
			body: `{"family": "f", "containerDefinitions": [{"name": "a"}, {"name": "b", "dependsOn": [{"containerName": "a"}]}]}`,
			want: []string{"Value null at 'containerDefinitions.2.member.dependsOn.1.member.condition' failed to satisfy constraint: Member must not be null"},
		},
		{
			name: "string length and pattern",
			body: `{"family": "f", "containerDefinitions": [], "tags": [{"key": "` + strings.Repeat("k", 129) + `"}, {"key": "a#b"}]}`,
			want: []string{
				"Value '" + strings.Repeat("k", 129) + "' at 'tags.1.member.key' failed to satisfy constraint: Member must have length less than or equal to 128",
				`Value 'a#b' at 'tags.2.member.key' failed to satisfy constraint: Member must satisfy regular expression pattern: ([\p{L}\p{Z}\p{N}_.:/=+\-@]*)`,
			},
		},
		{
			name: "length counts characters, not bytes",
			body: `{"family": "f", "containerDefinitions": [], "tags": [{"key": "` + strings.Repeat("é", 128) + `"}]}`,
		},
		{
			name: "list length",
			body: `{"family": "f", "containerDefinitions": [], "tags": [` + strings.Repeat(`{"key": "k"},`, 50) + `{"key": "k"}]}`,
			want: []string{"Value '[" + strings.Repeat("{key=k}, ", 50) + "{key=k}]' at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50"},
		},
		{
			name: "all problems are reported",
			body: `{"containerDefinitions": [{"name": "a", "dependsOn": [{}]}], "pidMode": "x"}`,
			want: []string{
				"Value null at 'containerDefinitions.1.member.dependsOn.1.member.condition' failed to satisfy constraint: Member must not be null",
				"Value null at 'containerDefinitions.1.member.dependsOn.1.member.containerName' failed to satisfy constraint: Member must not be null",
				"Value null at 'family' failed to satisfy constraint: Member must not be null",
				"Value 'x' at 'pidMode' failed to satisfy constraint: Member must satisfy enum value set: [host, task]",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode[ecsapi.RegisterTaskDefinitionRequest](t, tt.body)
			var got []string
			if err != nil {
				var ve *awsproto.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("want a *awsproto.ValidationError, got %T: %v", err, err)
				}
				got = ve.Problems
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestValidationErrorText(t *testing.T) {
	_, err := decode[ecsapi.RegisterTaskDefinitionRequest](t, `{"family": "f", "containerDefinitions": [], "networkMode": "foo"}`)
	want := "1 validation error detected: Value 'foo' at 'networkMode' failed to satisfy constraint: Member must satisfy enum value set: [bridge, host, awsvpc, none]"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestCreateClusterValidation(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		{name: "empty body", body: ``},
		{name: "name only", body: `{"clusterName": "default"}`},
		{
			name: "strategy item bounds and required member",
			body: `{"defaultCapacityProviderStrategy": [{"capacityProvider": "cp", "weight": 1001}, {"base": -1}]}`,
			want: []string{
				"Value '1001' at 'defaultCapacityProviderStrategy.1.member.weight' failed to satisfy constraint: Member must have value less than or equal to 1000",
				"Value '-1' at 'defaultCapacityProviderStrategy.2.member.base' failed to satisfy constraint: Member must have value greater than or equal to 0",
				"Value null at 'defaultCapacityProviderStrategy.2.member.capacityProvider' failed to satisfy constraint: Member must not be null",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode[ecsapi.CreateClusterRequest](t, tt.body)
			var got []string
			if err != nil {
				var ve *awsproto.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("want a *awsproto.ValidationError, got %T: %v", err, err)
				}
				got = ve.Problems
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestWrongJSONTypesAreSerializationErrors(t *testing.T) {
	for _, body := range []string{
		`{"family": 5, "containerDefinitions": []}`,
		`{"family": "f", "containerDefinitions": {}}`,
		`{"family": "f", "containerDefinitions": [{"memory": "lots"}]}`,
		`{"family": "f", "containerDefinitions": [{"essential": "yes"}]}`,
		`{"family": "f", "containerDefinitions": [{"memory": 3000000000}]}`, // beyond int32
		`{"family": "f", `,
		`[]`,
	} {
		_, err := decode[ecsapi.RegisterTaskDefinitionRequest](t, body)
		var se *awsproto.SerializationError
		if !errors.As(err, &se) {
			t.Errorf("%s: want *awsproto.SerializationError, got %T: %v", body, err, err)
		}
	}
	_, err := decode[ecsapi.CreateClusterRequest](t, `{"clusterName": ["a"]}`)
	var se *awsproto.SerializationError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "clusterName") {
		t.Errorf("want a SerializationError naming clusterName, got %v", err)
	}
}

// canonical decodes JSON into generic values so documents compare
// independently of member order and spacing.
func canonical(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRoundTripKeepsEveryMember(t *testing.T) {
	tests := []struct {
		name string
		v    any
		body string
	}{
		{name: "RegisterTaskDefinitionRequest", v: new(ecsapi.RegisterTaskDefinitionRequest), body: goodTaskDefinition},
		{name: "TaskDefinition", v: new(ecsapi.TaskDefinition), body: `{
			"taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
			"family": "web", "revision": 1, "status": "ACTIVE",
			"registeredAt": 1709242525.051,
			"volumes": [], "placementConstraints": [], "compatibilities": ["EC2"],
			"requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}],
			"containerDefinitions": [{"name": "app", "image": "nginx", "cpu": 0, "essential": true,
				"environment": [], "mountPoints": [], "volumesFrom": [], "portMappings": [],
				"systemControls": [], "environmentFiles": [], "dockerLabels": {}}]
		}`},
		{name: "Cluster", v: new(ecsapi.Cluster), body: `{
			"clusterArn": "arn:aws:ecs:us-east-1:000000000000:cluster/default", "clusterName": "default",
			"status": "ACTIVE", "registeredContainerInstancesCount": 0, "runningTasksCount": 0,
			"pendingTasksCount": 0, "activeServicesCount": 0, "statistics": [], "tags": [],
			"settings": [{"name": "containerInsights", "value": "disabled"}],
			"capacityProviders": [], "defaultCapacityProviderStrategy": []
		}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := awsproto.DecodeJSON([]byte(tt.body), tt.v); err != nil {
				t.Fatal(err)
			}
			out, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := canonical(t, out), canonical(t, []byte(tt.body)); !reflect.DeepEqual(got, want) {
				t.Errorf("round trip changed the document:\n got %s\nwant %s", out, tt.body)
			}
		})
	}
}

func TestAbsentMembersStayAbsent(t *testing.T) {
	c := ecsapi.ContainerDefinition{Name: new("app"), Environment: []ecsapi.KeyValuePair{}}
	out, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"environment":[],"name":"app"}` {
		t.Errorf("got %s", out)
	}
}

func TestServiceHasEveryOperation(t *testing.T) {
	svc := (&ecsapi.Handlers{}).Service()
	names := ecsapi.OperationNames()
	if len(names) != 77 || len(svc.Operations) != 77 {
		t.Fatalf("want 77 ECS operations, OperationNames has %d, Service %d", len(names), len(svc.Operations))
	}
	if !slices.IsSorted(names) {
		t.Error("OperationNames is not sorted")
	}
	for _, n := range names {
		op := svc.Operations[n]
		if op == nil || op.Name != n {
			t.Errorf("operation %s missing or misnamed", n)
			continue
		}
		if op.Implemented {
			t.Errorf("%s: Implemented without a handler", n)
		}
	}
	if svc.SigningName != "ecs" || svc.TargetPrefix != "AmazonEC2ContainerServiceV20141113" ||
		svc.Protocol != awsproto.JSON11 || svc.EventSource != "ecs.amazonaws.com" || svc.APIVersion != "2014-11-13" {
		t.Errorf("service metadata: %+v", svc)
	}
	if svc.ValidationCode != "" || svc.MapError != nil {
		t.Error("ValidationCode and MapError are the service layer's to set")
	}
	for name, want := range map[string]bool{"DescribeClusters": true, "ListTasks": true,
		"DiscoverPollEndpoint": true, "GetTaskProtection": true, "CreateCluster": false, "RunTask": false,
		"SubmitTaskStateChange": false} {
		if got := svc.Operations[name].ReadOnly; got != want {
			t.Errorf("%s: ReadOnly %v, want %v", name, got, want)
		}
	}
	sens := svc.Operations["RegisterTaskDefinition"].Sensitive
	if !slices.Contains(sens, "environment") || !slices.Contains(sens, "repositoryCredentials") {
		t.Errorf("RegisterTaskDefinition sensitive members: %q", sens)
	}
}

func TestUnimplementedOperation(t *testing.T) {
	op := (&ecsapi.Handlers{}).Service().Operations["RunTask"]
	in, err := op.Decode([]byte(`{"taskDefinition": "web"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = op.Call(context.Background(), in)
	var ae *awsproto.Error
	if !errors.As(err, &ae) || ae.Code != awsproto.CodeNotImplemented || ae.Message != "Berth does not implement ECS RunTask yet" {
		t.Errorf("got %#v", err)
	}
}

func TestImplementedOperation(t *testing.T) {
	var got *ecsapi.CreateClusterRequest
	h := &ecsapi.Handlers{
		CreateCluster: func(_ context.Context, in *ecsapi.CreateClusterRequest) (*ecsapi.CreateClusterResponse, error) {
			got = in
			return &ecsapi.CreateClusterResponse{Cluster: &ecsapi.Cluster{ClusterName: in.ClusterName}}, nil
		},
		DeleteCluster: func(context.Context, *ecsapi.DeleteClusterRequest) (*ecsapi.DeleteClusterResponse, error) {
			return nil, nil
		},
	}
	svc := h.Service()
	op := svc.Operations["CreateCluster"]
	if !op.Implemented {
		t.Fatal("CreateCluster not Implemented")
	}
	in, err := op.Decode([]byte(`{"clusterName": "prod"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := op.Call(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if *got.ClusterName != "prod" || *out.(*ecsapi.CreateClusterResponse).Cluster.ClusterName != "prod" {
		t.Errorf("handler saw %+v, answered %+v", got, out)
	}

	// A nil output answers {}.
	del := svc.Operations["DeleteCluster"]
	in, err = del.Decode([]byte(`{"cluster": "prod"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err = del.Call(context.Background(), in)
	if b, _ := json.Marshal(out); err != nil || string(b) != "{}" {
		t.Errorf("nil output: got %s, %v", b, err)
	}

	// Decode validates: DeleteCluster requires cluster.
	if _, err := del.Decode([]byte(`{}`), nil); err == nil {
		t.Error("DeleteCluster without cluster decoded")
	}

	// Call with another operation's input is a programming error.
	if _, err := op.Call(context.Background(), &ecsapi.DeleteClusterRequest{}); err == nil {
		t.Error("Call accepted an input of the wrong type")
	}
}

func TestEnumValues(t *testing.T) {
	want := []ecsapi.NetworkMode{"bridge", "host", "awsvpc", "none"}
	if got := ecsapi.NetworkMode("").Values(); !slices.Equal(got, want) {
		t.Errorf("NetworkMode values %q", got)
	}
	if ecsapi.LaunchTypeFargate != "FARGATE" || ecsapi.DesiredStatusRunning != "RUNNING" {
		t.Error("enum constants")
	}
	if ecsapi.ErrClusterNotFoundException != "ClusterNotFoundException" {
		t.Error("error code constant")
	}
}
