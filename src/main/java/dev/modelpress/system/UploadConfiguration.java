package dev.modelpress.system;

import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

@Configuration(proxyBeanMethods = false)
class UploadConfiguration {

  @Bean
  UploadSpool uploadSpool(UploadProperties props) {
    return new UploadSpool(props.spoolDir(), props.maxBytes());
  }
}
