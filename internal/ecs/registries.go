package ecs

import (
	"strings"

	"github.com/berthdev/berth/internal/api/ecsapi"
	"github.com/berthdev/berth/internal/arn"
)

// checkServiceRegistries applies ECS's rules to a service's
// serviceRegistries: one registry, a Cloud Map service ARN, containerName
// and containerPort together and naming a container and one of its port
// mappings, port only in awsvpc mode (where it and containerName/Port are
// exclusive). Whether the Cloud Map service exists is checked when tasks
// register (internal/cloudmap), as ECS reports it in service events.
func checkServiceRegistries(regs []ecsapi.ServiceRegistry, td *ecsapi.TaskDefinition) error {
	if len(regs) == 0 {
		return nil
	}
	if len(regs) > 1 {
		return invalid("Only one service registry is supported per service.")
	}
	r := regs[0]
	a, err := arn.Parse(deref(r.RegistryArn))
	if err != nil || a.Service != "servicediscovery" || !strings.HasPrefix(a.Resource, "service/srv-") {
		return invalid("Service registry ARN %s is not a valid AWS Cloud Map service ARN.", deref(r.RegistryArn))
	}
	mode := deref(td.NetworkMode)
	if mode == "" {
		mode = ecsapi.NetworkModeBridge
	}
	if r.Port != nil {
		if mode != ecsapi.NetworkModeAwsvpc {
			return invalid("The port field of a service registry is only valid for tasks using the awsvpc network mode; use containerName and containerPort.")
		}
		if r.ContainerName != nil || r.ContainerPort != nil {
			return invalid("A service registry can have either port or containerName and containerPort, not both.")
		}
		if *r.Port < 1 || *r.Port > 65535 {
			return invalid("The port of a service registry must be between 1 and 65535.")
		}
	}
	if (r.ContainerName == nil) != (r.ContainerPort == nil) {
		if r.ContainerName != nil && mode == ecsapi.NetworkModeAwsvpc {
			// awsvpc: containerName alone picks the container whose address
			// registers (A records); no port.
		} else {
			return invalid("When specifying 'containerName' or 'containerPort' for a service registry, both must be specified.")
		}
	}
	if r.ContainerName != nil {
		var cd *ecsapi.ContainerDefinition
		for i := range td.ContainerDefinitions {
			if deref(td.ContainerDefinitions[i].Name) == *r.ContainerName {
				cd = &td.ContainerDefinitions[i]
			}
		}
		if cd == nil {
			return invalid("The container '%s' does not exist in the task definition.", *r.ContainerName)
		}
		if r.ContainerPort != nil {
			found := false
			for _, pm := range cd.PortMappings {
				if deref(pm.ContainerPort) == *r.ContainerPort {
					found = true
				}
			}
			if !found {
				return invalid("The container '%s' does not have a port mapping for containerPort %d.", *r.ContainerName, *r.ContainerPort)
			}
		}
	}
	return nil
}
