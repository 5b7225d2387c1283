package ecrapi_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/berthdev/berth/internal/api/ecrapi"
	"github.com/berthdev/berth/internal/awsproto"
)

func problems(t *testing.T, body string) []string {
	t.Helper()
	var in ecrapi.DescribeRepositoriesRequest
	if err := awsproto.DecodeJSON([]byte(body), &in); err != nil {
		t.Fatal(err)
	}
	var ve *awsproto.ValidationError
	if err := in.Validate(); err != nil && !errors.As(err, &ve) {
		t.Fatalf("want a ValidationError, got %v", err)
	}
	if ve == nil {
		return nil
	}
	return ve.Problems
}

func TestDescribeRepositoriesValidation(t *testing.T) {
	tests := []struct {
		body string
		want []string
	}{
		{`{}`, nil},
		{`{"maxResults": 1000, "registryId": "000000000000", "repositoryNames": ["web", "team/api"]}`, nil},
		{`{"maxResults": 0}`, []string{"Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"}},
		{`{"registryId": "12"}`, []string{"Value '12' at 'registryId' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9]{12}"}},
		{`{"repositoryNames": []}`, []string{"Value '[]' at 'repositoryNames' failed to satisfy constraint: Member must have length greater than or equal to 1"}},
		{`{"repositoryNames": ["Web", "x", "ok"]}`, []string{"Value '[Web, x, ok]' at 'repositoryNames' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy regular expression pattern: [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*, Member must have length greater than or equal to 2]"}},
	}
	for _, tt := range tests {
		if got := problems(t, tt.body); !slices.Equal(got, tt.want) {
			t.Errorf("%s:\n got %q\nwant %q", tt.body, got, tt.want)
		}
	}
}

func TestECRService(t *testing.T) {
	svc := (&ecrapi.Handlers{}).Service()
	if svc.SigningName != "ecr" || svc.EventSource != "ecr.amazonaws.com" || svc.TargetPrefix != "AmazonEC2ContainerRegistry_V20150921" {
		t.Errorf("%+v", svc)
	}
	for _, op := range []string{"BatchCheckLayerAvailability", "BatchGetImage", "GetAuthorizationToken", "GetDownloadUrlForLayer", "DescribeImages"} {
		if !svc.Operations[op].ReadOnly {
			t.Errorf("%s should be read-only", op)
		}
	}
	for _, op := range []string{"PutImage", "InitiateLayerUpload", "UploadLayerPart", "CompleteLayerUpload", "CreateRepository"} {
		if svc.Operations[op].ReadOnly {
			t.Errorf("%s should not be read-only", op)
		}
	}
}
