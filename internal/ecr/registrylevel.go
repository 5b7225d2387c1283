package ecr

import (
	"context"

	"github.com/berthdev/berth/internal/api/ecrapi"
	"github.com/berthdev/berth/internal/awsproto"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/registry"
)

// ---- registry-level settings: the registry policy and replication ----

// PutRegistryPolicy validates and stores the registry policy. Its explicit
// Deny statements on ecr:CreateRepository are enforced by CreateRepository;
// the replication and pull-through grants it exists for have no effect in
// Berth's single account and region (docs/registry.md).
func (s *Service) PutRegistryPolicy(ctx context.Context, in *ecrapi.PutRegistryPolicyRequest) (*ecrapi.PutRegistryPolicyResponse, error) {
	text := deref(in.PolicyText)
	if _, err := registry.ParseRegistryPolicy(text); err != nil {
		// ECR's message does not say what is wrong; the log does.
		s.log.InfoContext(ctx, "registry policy refused", "error", err.Error())
		return nil, err
	}
	if err := s.reg.PutRegistryPolicy(ctx, text); err != nil {
		return nil, err
	}
	return &ecrapi.PutRegistryPolicyResponse{PolicyText: ptr(text), RegistryId: ptr(s.cfg.Account)}, nil
}

// GetRegistryPolicy returns the registry policy.
func (s *Service) GetRegistryPolicy(ctx context.Context, in *ecrapi.GetRegistryPolicyRequest) (*ecrapi.GetRegistryPolicyResponse, error) {
	text, err := s.reg.RegistryPolicy(ctx)
	if err != nil {
		return nil, err
	}
	return &ecrapi.GetRegistryPolicyResponse{PolicyText: ptr(text), RegistryId: ptr(s.cfg.Account)}, nil
}

// DeleteRegistryPolicy removes the registry policy.
func (s *Service) DeleteRegistryPolicy(ctx context.Context, in *ecrapi.DeleteRegistryPolicyRequest) (*ecrapi.DeleteRegistryPolicyResponse, error) {
	text, err := s.reg.DeleteRegistryPolicy(ctx)
	if err != nil {
		return nil, err
	}
	return &ecrapi.DeleteRegistryPolicyResponse{PolicyText: ptr(text), RegistryId: ptr(s.cfg.Account)}, nil
}

// PutReplicationConfiguration sets the registry's replication rules.
//
// ECR refuses a destination that is the source registry (this region and
// account), and Berth serves exactly one region and one account: every
// other destination names a registry Berth does not have, so nothing could
// ever be replicated there. Berth refuses such destinations with an error
// that says so, rather than storing rules it would silently never carry
// out. A configuration without rules (which turns replication off) is
// accepted.
func (s *Service) PutReplicationConfiguration(ctx context.Context, in *ecrapi.PutReplicationConfigurationRequest) (*ecrapi.PutReplicationConfigurationResponse, error) {
	for _, rule := range in.ReplicationConfiguration.Rules {
		for _, d := range rule.Destinations {
			region, account := deref(d.Region), deref(d.RegistryId)
			if region == s.cfg.Region && account == s.cfg.Account {
				return nil, invalidParam("replicationConfiguration", "Replication destination cannot be the same as the source registry")
			}
			return nil, errs.R(errs.Invalid, reasonInvalidParameter,
				"Berth serves one registry, '%s' in region '%s', and cannot replicate images to the registry '%s' in region '%s': replication destinations are refused rather than stored without effect (see docs/registry.md)",
				s.cfg.Account, s.cfg.Region, account, region)
		}
	}
	return &ecrapi.PutReplicationConfigurationResponse{ReplicationConfiguration: &ecrapi.ReplicationConfiguration{Rules: []ecrapi.ReplicationRule{}}}, nil
}

// DescribeRegistry describes the (single) registry: its replication rules
// are always empty, since PutReplicationConfiguration accepts no
// destination Berth could replicate to.
func (s *Service) DescribeRegistry(ctx context.Context, in *ecrapi.DescribeRegistryRequest) (*ecrapi.DescribeRegistryResponse, error) {
	return &ecrapi.DescribeRegistryResponse{RegistryId: ptr(s.cfg.Account), ReplicationConfiguration: &ecrapi.ReplicationConfiguration{Rules: []ecrapi.ReplicationRule{}}}, nil
}

// authorizeCreate applies the registry policy to CreateRepository.
func (s *Service) authorizeCreate(ctx context.Context, name string) error {
	return s.reg.AuthorizeCreateRepository(ctx, awsproto.CallFrom(ctx).Identity, name)
}
