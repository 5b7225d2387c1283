package ecs

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/berthdev/berth/internal/agentapi"
	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/errs"
	"github.com/berthdev/berth/internal/store"
)

// The agent-facing side of ECS (docs/agent.md), whose HTTP shell is
// internal/agentgw: joining (this file), the assignment stream
// (agentassign.go), observed-state reports (agentreport.go), agents'
// credentials (agentcreds.go) and log destinations (agentlogs.go).

// presenceTTL is how long an instance stays agentConnected after its
// assignment stream stops being kept alive.
const presenceTTL = 10 * time.Second

func newID() string { return hex.EncodeToString(randomBytes(16)) }

func (s *Service) instanceARN(cluster, id string) string {
	return s.arns.ECS("container-instance/" + cluster + "/" + id)
}

func (s *Service) taskARN(cluster, id string) string {
	return s.arns.ECS("task/" + cluster + "/" + id)
}

// builtinAttributes are the attributes ECS gives every instance.
func (s *Service) builtinAttributes(req agentapi.JoinRequest) map[string]string {
	attrs := map[string]string{
		"ecs.os-type":           orDefault(req.Resources.OSType, "linux"),
		"ecs.os-family":         "LINUX",
		"ecs.cpu-architecture":  orDefault(req.Resources.CPUArch, "x86_64"),
		"ecs.instance-type":     orDefault(req.InstanceType, "berth.host"),
		"ecs.availability-zone": orDefault(req.AvailabilityZone, s.arns.Region+"a"),
	}
	for _, c := range req.Resources.Capabilities {
		attrs[c] = ""
	}
	return attrs
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// JoinInstance registers a container instance for an agent holding a
// valid join token, and makes the agent's credential. The cluster
// "default" is created if missing, as ECS does on first registration.
func (s *Service) JoinInstance(ctx context.Context, req agentapi.JoinRequest) (agentapi.JoinResponse, error) {
	tok, err := s.checkJoinToken(ctx, req.Token)
	if err != nil {
		return agentapi.JoinResponse{}, err
	}
	if c := tok.rec.Cluster; c != "" {
		if req.Cluster != "" && req.Cluster != c {
			return agentapi.JoinResponse{}, errs.R(errs.Forbidden, "agent.wrong_cluster",
				"This join token is for cluster %s; it cannot register an instance in cluster %s.", c, req.Cluster)
		}
		req.Cluster = c
	}
	var guard *joinToken
	if tok.rec.SingleUse {
		guard = &tok
	}
	rec, secret, err := s.createInstance(ctx, req, true, guard)
	if err != nil {
		return agentapi.JoinResponse{}, err
	}
	return agentapi.JoinResponse{
		ContainerInstanceArn: rec.ARN, InstanceID: rec.ID, Cluster: rec.Cluster,
		AccessKeyID: rec.AccessKeyID, SecretAccessKey: secret, Region: s.arns.Region,
	}, nil
}

// createInstance writes a new container instance record, with an agent
// credential when withCredential (the secret is returned). A single-use
// join token (singleUse) is deleted in the same transaction, which
// compares on it: of two joins racing with it, one registers.
func (s *Service) createInstance(ctx context.Context, req agentapi.JoinRequest, withCredential bool, singleUse *joinToken) (instanceRecord, string, error) {
	if req.Resources.CPU <= 0 || req.Resources.MemoryMiB <= 0 {
		return instanceRecord{}, "", errs.R(errs.Invalid, reasonInvalidParameter, "A container instance must register CPU and MEMORY resources.")
	}
	for k := range req.Attributes {
		if strings.HasPrefix(k, "ecs.") {
			return instanceRecord{}, "", errs.R(errs.Invalid, reasonInvalidParameter, "Custom attribute %q may not use the reserved prefix ecs.", k)
		}
	}
	cluster := orDefault(req.Cluster, DefaultCluster)
	if _, _, err := s.getCluster(ctx, cluster, false); errs.Is(err, errs.NotFound) && cluster == DefaultCluster {
		if _, err := s.CreateCluster(ctx, &ecsapi.CreateClusterRequest{}); err != nil {
			return instanceRecord{}, "", err
		}
	}
	for {
		clusterCmp := store.Absent(keyClusters + cluster) // the hidden Fargate pool has no cluster record
		if cluster != FargatePool {
			_, clusterRev, err := s.getCluster(ctx, cluster, false)
			if err != nil {
				return instanceRecord{}, "", err
			}
			clusterCmp = store.ModRevisionIs(keyClusters+cluster, clusterRev)
		}
		id := newID()
		rec := instanceRecord{
			ID:            id,
			ARN:           s.instanceARN(cluster, id),
			Cluster:       cluster,
			Ec2InstanceID: "i-" + newID()[:17],
			Hostname:      req.Hostname,
			Status:        InstanceActive,
			Registered:    req.Resources,
			Attributes:    s.builtinAttributes(req),
			VersionInfo:   req.VersionInfo,
			RegisteredAt:  s.now().UTC(),
			Version:       1,
		}
		for k, v := range req.Attributes {
			rec.Attributes[k] = v
		}
		ops := []store.Op{}
		secret := ""
		if withCredential {
			rec.AccessKeyID = "ABIA" + strings.ToUpper(hex.EncodeToString(randomBytes(8)))
			secret = hex.EncodeToString(randomBytes(20))
			cb, _ := json.Marshal(s.newAgentCredRecord(rec.AccessKeyID, secret, id, cluster))
			ops = append(ops, store.Put(keyAgentCreds+rec.AccessKeyID, cb))
		}
		ib, _ := json.Marshal(rec)
		ops = append(ops, store.Put(instanceKey(cluster, id), ib))
		cmps := []store.Cmp{clusterCmp}
		if singleUse != nil {
			cmps = append(cmps, store.ModRevisionIs(singleUse.key, singleUse.rev))
			ops = append(ops, store.Delete(singleUse.key))
		}
		res, err := s.st.Txn(ctx, cmps, ops...)
		if err != nil {
			return instanceRecord{}, "", err
		}
		if !res.Succeeded && singleUse != nil {
			if _, err := s.st.Get(ctx, singleUse.key); errs.Is(err, errs.NotFound) {
				return instanceRecord{}, "", errBadJoinToken()
			}
		}
		if res.Succeeded {
			s.log.Info("container instance registered", "cluster", cluster, "instance", id, "hostname", req.Hostname)
			return rec, secret, nil
		}
	}
}
