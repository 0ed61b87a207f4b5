package dev.modelpress.dataset;

import java.util.Optional;
import java.util.UUID;
import org.springframework.data.domain.Page;
import org.springframework.data.domain.Pageable;
import org.springframework.data.jpa.repository.JpaRepository;

/** Datasets, always scoped to their owner. */
public interface DatasetRepository extends JpaRepository<DatasetEntity, UUID> {

  Optional<DatasetEntity> findByIdAndOwner(UUID id, String owner);

  Page<DatasetEntity> findByOwnerOrderByCreatedAtDesc(String owner, Pageable pageable);
}
