package dev.modelpress.tenant;

import jakarta.servlet.http.HttpServletRequest;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.security.config.annotation.web.builders.HttpSecurity;
import org.springframework.security.config.annotation.web.configurers.AbstractHttpConfigurer;
import org.springframework.security.config.http.SessionCreationPolicy;
import org.springframework.security.oauth2.jwt.JwtDecoder;
import org.springframework.security.oauth2.server.resource.web.BearerTokenResolver;
import org.springframework.security.oauth2.server.resource.web.DefaultBearerTokenResolver;
import org.springframework.security.web.SecurityFilterChain;
import org.springframework.security.web.authentication.AnonymousAuthenticationFilter;
import org.springframework.security.web.authentication.UsernamePasswordAuthenticationFilter;

/**
 * The security chain: stateless, no sessions, cookies or CSRF tokens (every request carries its
 * credential). {@code /v1/**} needs a tenant credential, tenant and key management and the orphan
 * sweep the admin role; health, Prometheus metrics, the contract and Swagger UI stay open. OIDC bearer tokens are accepted only when Spring
 * Boot has built a {@link JwtDecoder} from {@code spring.security.oauth2.resourceserver.jwt.*}.
 */
@Configuration(proxyBeanMethods = false)
class SecurityConfiguration {

  @Bean
  RateLimiter rateLimiter() {
    return new RateLimiter(System::nanoTime);
  }

  @Bean
  SecurityFilterChain apiSecurity(HttpSecurity http, TenantService tenants, SecurityProperties props,
      ProblemWriter problems, RateLimiter rates, StorageQuota storage, QuotaProperties quotas,
      ObjectProvider<JwtDecoder> jwtDecoder) throws Exception {
    ProblemAuthenticationEntryPoint entryPoint = new ProblemAuthenticationEntryPoint(problems);
    http
        .csrf(AbstractHttpConfigurer::disable)
        .httpBasic(AbstractHttpConfigurer::disable)
        .formLogin(AbstractHttpConfigurer::disable)
        .logout(AbstractHttpConfigurer::disable)
        .requestCache(AbstractHttpConfigurer::disable)
        .sessionManagement(s -> s.sessionCreationPolicy(SessionCreationPolicy.STATELESS))
        .exceptionHandling(e -> e.authenticationEntryPoint(entryPoint).accessDeniedHandler(entryPoint))
        .authorizeHttpRequests(a -> a
            .requestMatchers("/v1/tenants", "/v1/tenants/**", "/v1/keys/**").hasRole("ADMIN")
            // The orphan sweep reads and may delete every tenant's objects.
            .requestMatchers("/actuator/orphans", "/actuator/orphans/**").hasRole("ADMIN")
            .requestMatchers("/v1/**").authenticated()
            // Probes and Prometheus scrapers send no credential (docs/deploy.md).
            .requestMatchers("/actuator/health", "/actuator/health/**", "/actuator/info", "/actuator/prometheus",
                "/openapi.yaml", "/swagger-ui.html", "/swagger-ui/**", "/v3/api-docs/**", "/error").permitAll()
            .anyRequest().authenticated())
        .addFilterBefore(new ApiKeyAuthenticationFilter(tenants, entryPoint), UsernamePasswordAuthenticationFilter.class)
        .addFilterBefore(new QuotaFilter(rates, storage, quotas, problems), AnonymousAuthenticationFilter.class);
    JwtDecoder decoder = jwtDecoder.getIfAvailable();
    if (decoder != null) {
      http.oauth2ResourceServer(o -> o
          .bearerTokenResolver(jwtOnly())
          .authenticationEntryPoint(entryPoint)
          .accessDeniedHandler(entryPoint)
          .jwt(j -> j.decoder(decoder).jwtAuthenticationConverter(new JwtTenantConverter(tenants, props))));
    }
    return http.build();
  }

  /** Bearer tokens for the JWT decoder: not API keys, and none when an API key header is present. */
  private static BearerTokenResolver jwtOnly() {
    DefaultBearerTokenResolver standard = new DefaultBearerTokenResolver();
    return (HttpServletRequest request) -> {
      if (ApiKeyAuthenticationFilter.presentedKey(request) != null) {
        return null;
      }
      return standard.resolve(request);
    };
  }
}
