package alert

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

// SNS publishes alerts to an Amazon SNS topic.
type SNS struct {
	Client *sns.Client
	Topic  string // ARN
}

// Notify publishes a.
func (s SNS) Notify(ctx context.Context, a Alert) error {
	subject := a.Subject()
	if len(subject) > 100 { // SNS's limit for email subjects
		subject = subject[:100]
	}
	_, err := s.Client.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(s.Topic),
		Subject:  aws.String(subject),
		Message:  aws.String(a.Text()),
	})
	if err != nil {
		return fmt.Errorf("sns %s: %w", s.Topic, err)
	}
	return nil
}
