package taskdef

import (
	"slices"
	"strings"

	"github.com/berthdev/berth/internal/api/ecsapi"
)

// Container instance attributes a task definition can require. The agent
// registers them; placement only puts a task on an instance that has every
// attribute in the task definition's requiresAttributes.
const (
	attrDockerAPI          = "com.amazonaws.ecs.capability.docker-remote-api." // + version
	attrLoggingDriver      = "com.amazonaws.ecs.capability.logging-driver."    // + driver
	attrDockerPlugin       = "ecs.capability.docker-plugin."                   // + volume driver
	attrTaskIAMRole        = "com.amazonaws.ecs.capability.task-iam-role"
	attrTaskIAMRoleHost    = "com.amazonaws.ecs.capability.task-iam-role-network-host"
	attrECRAuth            = "com.amazonaws.ecs.capability.ecr-auth"
	attrPrivileged         = "com.amazonaws.ecs.capability.privileged-container"
	attrSELinux            = "com.amazonaws.ecs.capability.selinux"
	attrAppArmor           = "com.amazonaws.ecs.capability.apparmor"
	attrTaskENI            = "ecs.capability.task-eni"
	attrExecRoleAwslogs    = "ecs.capability.execution-role-awslogs"
	attrExecRoleECRPull    = "ecs.capability.execution-role-ecr-pull"
	attrHealthCheck        = "ecs.capability.container-health-check"
	attrContainerOrdering  = "ecs.capability.container-ordering"
	attrSecretsSSMEnv      = "ecs.capability.secrets.ssm.environment-variables"
	attrSecretsASMEnv      = "ecs.capability.secrets.asm.environment-variables"
	attrSecretsSSMLog      = "ecs.capability.secrets.ssm.bootstrap.log-driver"
	attrSecretsASMLog      = "ecs.capability.secrets.asm.bootstrap.log-driver"
	attrPrivateRegistry    = "ecs.capability.private-registry-authentication.secretsmanager"
	attrEnvFilesS3         = "ecs.capability.env-files.s3"
	attrFirelens           = "ecs.capability.firelens." // + fluentd | fluentbit
	attrFirelensConfigS3   = "ecs.capability.firelens.options.config.s3"
	attrFirelensConfigFile = "ecs.capability.firelens.options.config.file"
	attrAppMesh            = "ecs.capability.aws-appmesh"
	attrEFS                = "ecs.capability.efs"
	attrEFSAuth            = "ecs.capability.efsAuth"
	attrFSxWindows         = "ecs.capability.fsxWindowsFileServer"
	attrPidIpc             = "ecs.capability.pid-ipc-namespace-sharing"
)

// requiresAttributes computes the attributes a container instance needs to
// run td, sorted by name. The table, and what it is based on, is in
// docs/task-definitions.md.
func requiresAttributes(td *ecsapi.TaskDefinition) []ecsapi.Attribute {
	set := map[string]bool{}
	add := func(names ...string) {
		for _, n := range names {
			set[n] = true
		}
	}
	api := func(version string) { add(attrDockerAPI + version) }

	mode := deref(td.NetworkMode)
	execRole := deref(td.ExecutionRoleArn) != ""
	if deref(td.TaskRoleArn) != "" {
		add(attrTaskIAMRole)
		if mode == ecsapi.NetworkModeHost {
			add(attrTaskIAMRoleHost)
		}
	}
	if mode == ecsapi.NetworkModeAwsvpc {
		add(attrTaskENI)
	}
	if td.PidMode != nil || td.IpcMode != nil {
		add(attrPidIpc)
	}
	if td.ProxyConfiguration != nil {
		add(attrAppMesh)
	}
	for _, v := range td.Volumes {
		if v.EfsVolumeConfiguration != nil {
			add(attrEFS, attrEFSAuth)
			api("1.25")
		}
		if v.FsxWindowsFileServerVolumeConfiguration != nil {
			add(attrFSxWindows)
		}
		if dv := v.DockerVolumeConfiguration; dv != nil {
			driver := deref(dv.Driver)
			if driver == "" {
				driver = "local"
			}
			add(attrDockerPlugin + driver)
		}
	}

	for i := range td.ContainerDefinitions {
		c := &td.ContainerDefinitions[i]
		if isECRImage(deref(c.Image)) {
			add(attrECRAuth)
			if execRole {
				add(attrExecRoleECRPull)
			}
		}
		if c.MemoryReservation != nil {
			api("1.21")
		}
		if c.DockerLabels != nil {
			api("1.18")
		}
		if len(c.Ulimits) > 0 {
			api("1.18")
		}
		if deref(c.Privileged) {
			add(attrPrivileged)
		}
		for _, opt := range c.DockerSecurityOptions {
			switch {
			case strings.HasPrefix(opt, "label:"), strings.HasPrefix(opt, "label="):
				add(attrSELinux)
			case strings.HasPrefix(opt, "apparmor:"), strings.HasPrefix(opt, "apparmor="):
				add(attrAppArmor)
			}
		}
		if lp := c.LinuxParameters; lp != nil {
			if deref(lp.InitProcessEnabled) {
				api("1.25")
			}
			if lp.SharedMemorySize != nil || len(lp.Tmpfs) > 0 {
				api("1.22")
			}
		}
		if hc := c.HealthCheck; hc != nil {
			add(attrHealthCheck)
			if hc.StartPeriod != nil {
				api("1.29")
			} else {
				api("1.24")
			}
		}
		if len(c.DependsOn) > 0 || c.StartTimeout != nil || c.StopTimeout != nil {
			add(attrContainerOrdering)
		}
		for _, s := range c.Secrets {
			add(secretAttr(s, attrSecretsSSMEnv, attrSecretsASMEnv))
		}
		if len(c.EnvironmentFiles) > 0 {
			add(attrEnvFilesS3)
		}
		if c.RepositoryCredentials != nil {
			add(attrPrivateRegistry)
		}
		if fc := c.FirelensConfiguration; fc != nil {
			if t := deref(fc.Type); t != "" {
				add(attrFirelens + string(t))
			}
			switch fc.Options["config-file-type"] {
			case "s3":
				add(attrFirelensConfigS3)
			case "file":
				add(attrFirelensConfigFile)
			}
		}
		if lc := c.LogConfiguration; lc != nil {
			api("1.18")
			driver := deref(lc.LogDriver)
			if driver != "" {
				add(attrLoggingDriver + string(driver))
			}
			if len(lc.Options) > 0 {
				api("1.19")
			}
			if _, ok := lc.Options["mode"]; ok {
				api("1.28")
			}
			if driver == ecsapi.LogDriverAwslogs && execRole {
				add(attrExecRoleAwslogs)
			}
			for _, s := range lc.SecretOptions {
				add(secretAttr(s, attrSecretsSSMLog, attrSecretsASMLog))
			}
		}
	}

	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]ecsapi.Attribute, len(names))
	for i, n := range names {
		out[i] = ecsapi.Attribute{Name: ptr(n)}
	}
	return out
}

// secretAttr picks the Secrets Manager attribute for a secret whose
// valueFrom is a Secrets Manager ARN, the Parameter Store one otherwise.
func secretAttr(s ecsapi.Secret, ssm, asm string) string {
	if strings.Contains(deref(s.ValueFrom), ":secretsmanager:") {
		return asm
	}
	return ssm
}
