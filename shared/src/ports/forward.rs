//! Forwarding implementations of the store ports, for wrappers that change one port and
//! pass the others through to a field `inner` (a per-batch cache, a fault-injecting test
//! store). Written once here so every wrapper forwards the same, complete set of methods.
//!
//! `forward_delivery_store!(impl[<S: DeliveryStore>] Wrapper<'_, S>);` — the brackets hold
//! the `impl` generics, empty for a plain type: `forward_trigger_store!(impl[] Wrapper);`.

#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use jiff::Timestamp;
}

/// Implements [`DeliveryStore`](crate::ports::DeliveryStore) by forwarding to `self.inner`.
#[macro_export]
macro_rules! forward_delivery_store {
    (impl[$($generics:tt)*] $wrapper:ty) => {
        #[$crate::ports::forward::__private::async_trait]
        impl $($generics)* $crate::ports::DeliveryStore for $wrapper {
            async fn create_delivery(
                &self,
                delivery: &$crate::domain::Delivery,
            ) -> Result<$crate::ports::CreateOutcome, $crate::ports::StoreError> {
                self.inner.create_delivery(delivery).await
            }
            async fn get_delivery(
                &self,
                id: &str,
            ) -> Result<Option<$crate::domain::Delivery>, $crate::ports::StoreError> {
                self.inner.get_delivery(id).await
            }
            async fn update_delivery(
                &self,
                delivery: &$crate::domain::Delivery,
            ) -> Result<$crate::domain::Delivery, $crate::ports::StoreError> {
                self.inner.update_delivery(delivery).await
            }
            async fn list_due(
                &self,
                now: $crate::ports::forward::__private::Timestamp,
                limit: usize,
            ) -> Result<Vec<$crate::domain::Delivery>, $crate::ports::StoreError> {
                self.inner.list_due(now, limit).await
            }
            async fn list_to_settle(
                &self,
                now: $crate::ports::forward::__private::Timestamp,
                limit: usize,
            ) -> Result<Vec<$crate::domain::Delivery>, $crate::ports::StoreError> {
                self.inner.list_to_settle(now, limit).await
            }
            async fn list_deliveries(
                &self,
                post_id: Option<&str>,
            ) -> Result<Vec<$crate::domain::Delivery>, $crate::ports::StoreError> {
                self.inner.list_deliveries(post_id).await
            }
        }
    };
}

/// Implements [`TriggerStore`](crate::ports::TriggerStore) by forwarding to `self.inner`.
#[macro_export]
macro_rules! forward_trigger_store {
    (impl[$($generics:tt)*] $wrapper:ty) => {
        #[$crate::ports::forward::__private::async_trait]
        impl $($generics)* $crate::ports::TriggerStore for $wrapper {
            async fn fire_once(
                &self,
                firing: &$crate::ports::Firing,
            ) -> Result<$crate::ports::FireOutcome, $crate::ports::StoreError> {
                self.inner.fire_once(firing).await
            }
            async fn trigger_state(
                &self,
                campaign: &str,
                rule: &str,
            ) -> Result<Option<$crate::ports::TriggerState>, $crate::ports::StoreError> {
                self.inner.trigger_state(campaign, rule).await
            }
            async fn mark_announced(
                &self,
                campaign: &str,
                rule: &str,
                window_start: $crate::ports::forward::__private::Timestamp,
            ) -> Result<(), $crate::ports::StoreError> {
                self.inner.mark_announced(campaign, rule, window_start).await
            }
            async fn record_firing(
                &self,
                record: &$crate::ports::FiringRecord,
            ) -> Result<(), $crate::ports::StoreError> {
                self.inner.record_firing(record).await
            }
            async fn list_firings(
                &self,
                campaign: &str,
            ) -> Result<Vec<$crate::ports::FiringRecord>, $crate::ports::StoreError> {
                self.inner.list_firings(campaign).await
            }
            async fn take_budget(
                &self,
                key: &str,
                limit: u32,
                expires_at: $crate::ports::forward::__private::Timestamp,
                taker: Option<&str>,
            ) -> Result<bool, $crate::ports::StoreError> {
                self.inner.take_budget(key, limit, expires_at, taker).await
            }
        }
    };
}
