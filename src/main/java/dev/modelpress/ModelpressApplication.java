package dev.modelpress;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.ConfigurationPropertiesScan;

/** Entry point of the modelpress service. */
@SpringBootApplication
@ConfigurationPropertiesScan
public class ModelpressApplication {

  public static void main(String[] args) {
    SpringApplication.run(ModelpressApplication.class, args);
  }
}
