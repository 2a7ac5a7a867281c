package bedrock

import (
	"context"
	"errors"
	"net/http"
	"strings"

	smithyeventstream "github.com/aws/smithy-go/eventstream"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/smithy-go"
	"github.com/sluice-llm/sluice/shared/provider"
)

func (p *Provider) classify(err error) *provider.Error { return classify(p.name, err) }

// classify turns an SDK error (from the call or from the stream) into a
// *provider.Error.
func classify(name string, err error) *provider.Error {
	var pe *provider.Error
	if errors.As(err, &pe) {
		return pe
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return provider.AsError(name, err)
	}
	status := 0
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, msg := ae.ErrorCode(), ae.ErrorMessage()
		if msg == "" || msg == "UnknownError" {
			msg = code
		}
		return &provider.Error{Kind: apiKind(ae, status, code, msg), Provider: name, Status: status, Message: msg, Err: err}
	}
	var (
		de  *smithy.DeserializationError
		ce  smithyeventstream.ChecksumError
		le  smithyeventstream.LengthError
		ume *smithyeventstream.UnknownMessageError
	)
	if errors.As(err, &de) || errors.As(err, &ce) || errors.As(err, &le) || errors.As(err, &ume) {
		return &provider.Error{Kind: provider.KindProtocol, Provider: name, Status: status, Err: err}
	}
	if status != 0 {
		return &provider.Error{Kind: provider.ClassifyStatus(status, "", ""), Provider: name, Status: status, Err: err}
	}
	// Below HTTP: connection refused or reset, body cut, timeouts.
	return provider.AsError(name, err)
}

// apiKind classifies a Bedrock API error, by modeled type first and by code
// for the errors the SDK does not model (auth failures from the AWS front
// end arrive as generic errors).
func apiKind(ae smithy.APIError, status int, code, msg string) provider.Kind {
	switch ae.(type) {
	case *types.ThrottlingException, *types.ServiceQuotaExceededException:
		return provider.KindRateLimited
	case *types.ServiceUnavailableException, *types.ModelNotReadyException,
		*types.InternalServerException, *types.ModelStreamErrorException, *types.ModelErrorException:
		return provider.KindUnavailable
	case *types.ModelTimeoutException:
		return provider.KindTimeout
	case *types.ValidationException:
		return validationKind(code, msg)
	case *types.AccessDeniedException:
		return provider.KindAuth
	case *types.ResourceNotFoundException:
		return provider.KindNotFound // the model (or profile) is not in this account and region
	case *types.ConflictException:
		return provider.KindBadRequest
	}
	switch code {
	case "ThrottlingException", "ThrottledException", "TooManyRequestsException", "ServiceQuotaExceededException":
		return provider.KindRateLimited
	case "ServiceUnavailableException", "ModelNotReadyException", "InternalServerException",
		"ModelStreamErrorException", "ModelErrorException", "InternalFailure":
		return provider.KindUnavailable
	case "ModelTimeoutException", "RequestTimeout", "RequestTimeoutException":
		return provider.KindTimeout
	case "ValidationException":
		return validationKind(code, msg)
	case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
		"ExpiredTokenException", "IncompleteSignature", "MissingAuthenticationToken",
		"InvalidClientTokenId", "SignatureDoesNotMatch":
		return provider.KindAuth
	case "ResourceNotFoundException":
		return provider.KindNotFound
	}
	if status == 0 {
		// An unknown exception frame mid-stream: the upstream failed, not
		// the request.
		return provider.KindUnavailable
	}
	return provider.ClassifyStatus(status, code, msg)
}

// validationKind separates context overflow from other invalid requests;
// Bedrock reports both as ValidationException, with model-specific text.
func validationKind(code, msg string) provider.Kind {
	k := provider.ClassifyStatus(http.StatusBadRequest, code, msg)
	if k != provider.KindBadRequest {
		return k
	}
	m := strings.ToLower(msg)
	for _, s := range []string{"context limit", "context window", "input length", "too many input tokens", "input too long"} {
		if strings.Contains(m, s) {
			return provider.KindContextTooLong
		}
	}
	return provider.KindBadRequest
}
