package dev.modelpress.webhook;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.autoconfigure.condition.ConditionalOnExpression;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The signer, from {@code modelpress.webhooks.secret}, or generated for this run in the embedded
 * single-process mode (no {@code spring.datasource.url}). With an external database and no secret,
 * there is no signer: callbacks are refused at submission (see {@code CallbackUrls}), since pods
 * generating keys of their own would sign with keys no receiver knows.
 */
@Configuration(proxyBeanMethods = false)
@ConditionalOnExpression("!'${modelpress.webhooks.secret:}'.isBlank() or '${spring.datasource.url:}'.isEmpty()")
class WebhookConfiguration {

  private static final Logger log = LoggerFactory.getLogger(WebhookConfiguration.class);

  @Bean
  WebhookSigner webhookSigner(WebhookProperties props) {
    if (props.secret() != null && !props.secret().isBlank()) {
      return WebhookSigner.fromSecret(props.secret());
    }
    String generated = WebhookSigner.generateSecret();
    log.warn("modelpress.webhooks.secret is not set: webhooks are signed with the secret {} generated for this run; "
        + "set the property to keep it across restarts", generated);
    return WebhookSigner.fromSecret(generated);
  }
}
