package console_test

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

func regTD() *ecs.RegisterTaskDefinitionInput {
	return &ecs.RegisterTaskDefinitionInput{Family: aws.String("console-web"), ContainerDefinitions: []types.ContainerDefinition{
		{Name: aws.String("web"), Image: aws.String("busybox"), Memory: aws.Int32(64), Essential: aws.Bool(true)}}}
}
