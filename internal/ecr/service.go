// Package ecr is Berth's Amazon ECR application service: the ECR API
// (JSON 1.1, generated shapes in ecrapi) over the registry domain layer
// (package registry), which also serves the OCI distribution API at /v2/.
//
// Handlers take and return wire shapes; errors are the registry's domain
// errors, mapped to ECR's exceptions by MapError at the edge only.
package ecr

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"time"

	"github.com/berthdev/berth/internal/api/ecrapi"
	"github.com/berthdev/berth/internal/arn"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/registry"
)

// Config configures the ECR service.
type Config struct {
	Partition string // "aws"
	Region    string
	Account   string
	// RegistryHost returns the host:port Docker pushes to (the listener's
	// public address); repositoryUri and proxyEndpoint are built from it.
	RegistryHost func() string
}

// Service implements the ECR API.
type Service struct {
	reg  *registry.Registry
	cfg  Config
	arns arn.Builder
	now  func() time.Time
	log  *slog.Logger
}

// New returns the ECR service.
func New(reg *registry.Registry, cfg Config, log *slog.Logger) *Service {
	if cfg.Partition == "" {
		cfg.Partition = "aws"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.RegistryHost == nil {
		cfg.RegistryHost = func() string { return "127.0.0.1:4566" }
	}
	s := &Service{reg: reg, cfg: cfg, log: log, now: time.Now,
		arns: arn.Builder{Partition: cfg.Partition, Region: cfg.Region, Account: cfg.Account}}
	if reg != nil {
		reg.SetRepositoryARN(s.repoARN)
	}
	return s
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// API returns the ECR service for the front door.
func (s *Service) API() *awsproto.Service {
	h := &ecrapi.Handlers{
		CreateRepository:              s.CreateRepository,
		DescribeRepositories:          s.DescribeRepositories,
		DeleteRepository:              s.DeleteRepository,
		DescribeRegistry:              s.DescribeRegistry,
		PutRegistryPolicy:             s.PutRegistryPolicy,
		GetRegistryPolicy:             s.GetRegistryPolicy,
		DeleteRegistryPolicy:          s.DeleteRegistryPolicy,
		PutReplicationConfiguration:   s.PutReplicationConfiguration,
		GetAuthorizationToken:         s.GetAuthorizationToken,
		ListImages:                    s.ListImages,
		DescribeImages:                s.DescribeImages,
		BatchGetImage:                 s.BatchGetImage,
		BatchDeleteImage:              s.BatchDeleteImage,
		PutImage:                      s.PutImage,
		BatchCheckLayerAvailability:   s.BatchCheckLayerAvailability,
		InitiateLayerUpload:           s.InitiateLayerUpload,
		UploadLayerPart:               s.UploadLayerPart,
		CompleteLayerUpload:           s.CompleteLayerUpload,
		GetDownloadUrlForLayer:        s.GetDownloadUrlForLayer,
		PutLifecyclePolicy:            s.PutLifecyclePolicy,
		GetLifecyclePolicy:            s.GetLifecyclePolicy,
		DeleteLifecyclePolicy:         s.DeleteLifecyclePolicy,
		StartLifecyclePolicyPreview:   s.StartLifecyclePolicyPreview,
		GetLifecyclePolicyPreview:     s.GetLifecyclePolicyPreview,
		PutImageTagMutability:         s.PutImageTagMutability,
		PutImageScanningConfiguration: s.PutImageScanningConfiguration,
		SetRepositoryPolicy:           s.SetRepositoryPolicy,
		GetRepositoryPolicy:           s.GetRepositoryPolicy,
		DeleteRepositoryPolicy:        s.DeleteRepositoryPolicy,
		TagResource:                   s.TagResource,
		UntagResource:                 s.UntagResource,
		ListTagsForResource:           s.ListTagsForResource,
	}
	svc := h.Service()
	for name, op := range svc.Operations {
		if op.Implemented && !policyExempt[name] {
			op.Call = s.authorized("ecr:"+name, op.Call)
		}
	}
	svc.ValidationCode = ecrapi.ErrInvalidParameterException
	svc.MapError = MapError
	// The token is a credential: keep it out of audit records.
	if op := svc.Operations["GetAuthorizationToken"]; op != nil {
		op.Sensitive = append(op.Sensitive, "authorizationToken")
	}
	return svc
}

// Reasons of errors this package makes itself.
const (
	reasonInvalidLayer     = "ecr.invalid_layer"
	reasonLayerExists      = "ecr.layer_exists"
	reasonEmptyUpload      = "ecr.empty_upload"
	reasonInvalidParameter = "ecr.invalid_parameter"
	reasonTooManyTags      = "ecr.too_many_tags"
	reasonDigestMismatch   = "ecr.image_digest_mismatch"
	reasonInvalidTagParam  = "ecr.invalid_tag_parameter"
)

// errorMap maps domain errors to ECR's wire errors.
var errorMap = awsproto.ErrorMap{
	Reasons: map[string]string{
		registry.ReasonNameUnknown:            ecrapi.ErrRepositoryNotFoundException,
		registry.ReasonRepoExists:             ecrapi.ErrRepositoryAlreadyExistsException,
		registry.ReasonRepoNotEmpty:           ecrapi.ErrRepositoryNotEmptyException,
		registry.ReasonManifestUnknown:        ecrapi.ErrImageNotFoundException,
		registry.ReasonManifestBlobUnknown:    ecrapi.ErrLayersNotFoundException,
		registry.ReasonBlobUnknown:            ecrapi.ErrLayersNotFoundException,
		registry.ReasonUploadUnknown:          ecrapi.ErrUploadNotFoundException,
		registry.ReasonRangeInvalid:           ecrapi.ErrInvalidLayerPartException,
		registry.ReasonTagImmutable:           ecrapi.ErrImageTagAlreadyExistsException,
		registry.ReasonImageExists:            ecrapi.ErrImageAlreadyExistsException,
		registry.ReasonLifecycleNotFound:      ecrapi.ErrLifecyclePolicyNotFoundException,
		registry.ReasonPolicyNotFound:         ecrapi.ErrRepositoryPolicyNotFoundException,
		registry.ReasonRegistryPolicyNotFound: ecrapi.ErrRegistryPolicyNotFoundException,
		registry.ReasonPreviewNotFound:        ecrapi.ErrLifecyclePolicyPreviewNotFoundException,
		reasonInvalidLayer:                    ecrapi.ErrInvalidLayerException,
		reasonLayerExists:                     ecrapi.ErrLayerAlreadyExistsException,
		reasonEmptyUpload:                     ecrapi.ErrEmptyUploadException,
		reasonTooManyTags:                     ecrapi.ErrTooManyTagsException,
		reasonDigestMismatch:                  ecrapi.ErrImageDigestDoesNotMatchException,
		reasonInvalidTagParam:                 ecrapi.ErrInvalidTagParameterException,
	},
	Kinds: map[errs.Kind]string{
		errs.Invalid:       ecrapi.ErrInvalidParameterException,
		errs.NotFound:      ecrapi.ErrInvalidParameterException,
		errs.Conflict:      ecrapi.ErrInvalidParameterException,
		errs.AlreadyExists: ecrapi.ErrInvalidParameterException,
		errs.LimitExceeded: ecrapi.ErrLimitExceededException,
	},
	ServerCode: ecrapi.ErrServerException,
}

// MapError maps domain errors to ECR's wire errors. Model validation
// failures are reported as ECR reports them: InvalidParameterException
// with its first problem written "Invalid parameter at '<member>' failed
// to satisfy constraint: '<constraint>'".
func MapError(err error) *awsproto.Error {
	var ve *awsproto.ValidationError
	if errors.As(err, &ve) && len(ve.Problems) > 0 {
		return &awsproto.Error{Code: ecrapi.ErrInvalidParameterException, Message: validationMessage(ve.Problems[0])}
	}
	return errorMap.Map(err)
}

// problemRE parses awsproto's Coral-style problem: "Value '<v>' at
// '<member>' failed to satisfy constraint: <constraint>" (or "Value null
// at ..." or, for sensitive members, "Value at ...").
var problemRE = regexp.MustCompile(`(?s)^Value (?:null |'.*' )?at '([^']*)' failed to satisfy constraint: (.*)$`)

func validationMessage(problem string) string {
	m := problemRE.FindStringSubmatch(problem)
	if m == nil {
		return problem
	}
	return fmt.Sprintf("Invalid parameter at '%s' failed to satisfy constraint: '%s'", m[1], m[2])
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// host is the registry address Docker uses: the listener's, with an
// unspecified IP made loopback.
func (s *Service) host() string {
	h := s.cfg.RegistryHost()
	if ip, port, err := net.SplitHostPort(h); err == nil {
		if p := net.ParseIP(ip); p != nil && p.IsUnspecified() {
			return net.JoinHostPort("127.0.0.1", port)
		}
	}
	return h
}

func (s *Service) repoARN(name string) string { return s.arns.Service("ecr", "repository/"+name) }

func (s *Service) wireRepo(r registry.Repository) *ecrapi.Repository {
	mut := ecrapi.ImageTagMutability(r.TagMutability)
	enc := ecrapi.EncryptionType(r.EncryptionType)
	out := &ecrapi.Repository{
		CreatedAt:                          awsproto.NewTime(r.CreatedAt),
		ImageTagMutability:                 &mut,
		ImageScanningConfiguration:         &ecrapi.ImageScanningConfiguration{ScanOnPush: ptr(r.ScanOnPush)},
		EncryptionConfiguration:            &ecrapi.EncryptionConfiguration{EncryptionType: &enc},
		RegistryId:                         ptr(s.cfg.Account),
		RepositoryArn:                      ptr(s.repoARN(r.Name)),
		RepositoryName:                     ptr(r.Name),
		RepositoryUri:                      ptr(s.host() + "/" + r.Name),
		ImageTagMutabilityExclusionFilters: wireExclusions(r.TagMutabilityExclusions),
	}
	if r.KMSKey != "" {
		out.EncryptionConfiguration.KmsKey = ptr(r.KMSKey)
	}
	return out
}

// GetAuthorizationToken issues a registry password for the caller's key:
// base64("AWS:" + token), valid 12 hours.
func (s *Service) GetAuthorizationToken(ctx context.Context, in *ecrapi.GetAuthorizationTokenRequest) (*ecrapi.GetAuthorizationTokenResponse, error) {
	ak := awsproto.CallFrom(ctx).Identity.AccessKey
	if ak == "" {
		return nil, errs.E(errs.Unauthenticated, "no caller identity")
	}
	tok, exp, err := s.reg.IssueToken(ctx, ak)
	if err != nil {
		return nil, err
	}
	enc := base64.StdEncoding.EncodeToString([]byte("AWS:" + tok))
	return &ecrapi.GetAuthorizationTokenResponse{AuthorizationData: []ecrapi.AuthorizationData{{
		AuthorizationToken: &enc,
		ExpiresAt:          awsproto.NewTime(exp),
		ProxyEndpoint:      ptr("http://" + s.host()),
	}}}, nil
}
