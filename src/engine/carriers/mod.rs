//! Carrier connections: where outbound messages go, by the carrier id a code names.

pub mod sim;

use std::collections::HashMap;

use crate::protocol::Message;

pub enum Carrier {
    Sim(std::sync::Arc<sim::SimCarrier>),
}

#[derive(Default)]
pub struct Carriers {
    by_id: HashMap<String, Carrier>,
}

impl Carriers {
    pub fn insert(&mut self, id: String, carrier: Carrier) {
        self.by_id.insert(id, carrier);
    }

    /// Hands `message` to carrier `id`; returns the carrier's message id.
    pub async fn send(&self, id: &str, message: &Message) -> Result<String, String> {
        match self.by_id.get(id) {
            Some(Carrier::Sim(c)) => c.send(message).await,
            None => Err(format!(
                "carrier {id} has no outbound connection configured"
            )),
        }
    }
}
