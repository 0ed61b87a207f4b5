package dev.modelpress.model;

import java.util.Optional;
import java.util.UUID;
import org.springframework.data.domain.Page;
import org.springframework.data.domain.Pageable;
import org.springframework.data.jpa.repository.JpaRepository;

/** Models, always scoped to their owner. */
public interface ModelRepository extends JpaRepository<ModelEntity, UUID> {

  Optional<ModelEntity> findByIdAndOwner(UUID id, String owner);

  Page<ModelEntity> findByOwnerOrderByCreatedAtDesc(String owner, Pageable pageable);
}
