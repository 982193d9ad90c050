//! How alerts land in Palisade's finding model: Falco's eight priorities on the five
//! severities, rule categories on alert categories, and the alert's evidence as JSON. Every
//! producer of alert findings (the agent's detector, the server's audit webhook) uses these,
//! so an alert means the same whichever way it arrived.

use palisade_model::{AlertCategory, Severity};

use crate::{Alert, Category, Priority};

impl From<Priority> for Severity {
    fn from(priority: Priority) -> Severity {
        match priority {
            Priority::Emergency | Priority::Alert | Priority::Critical => Severity::Critical,
            Priority::Error => Severity::High,
            Priority::Warning => Severity::Medium,
            Priority::Notice | Priority::Informational => Severity::Low,
            Priority::Debug => Severity::Info,
        }
    }
}

impl From<Category> for AlertCategory {
    fn from(category: Category) -> AlertCategory {
        match category {
            Category::MaliciousImage => AlertCategory::MaliciousImage,
            Category::Malware => AlertCategory::Malware,
            Category::Intrusion => AlertCategory::Intrusion,
            Category::Escape => AlertCategory::Escape,
            Category::HighRiskOperation => AlertCategory::HighRiskOperation,
        }
    }
}

impl Alert {
    /// Every field the rule used, with its value, as a JSON object (the evidence kept in an
    /// alert finding's raw event).
    pub fn fields_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.fields
            .iter()
            .map(|(field, value)| (field.clone(), serde_json::Value::from(value.as_str())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_map_onto_severities_by_rank() {
        let mapped: Vec<Severity> = [
            Priority::Emergency,
            Priority::Alert,
            Priority::Critical,
            Priority::Error,
            Priority::Warning,
            Priority::Notice,
            Priority::Informational,
            Priority::Debug,
        ]
        .into_iter()
        .map(Severity::from)
        .collect();
        use Severity::{Critical, High, Info, Low, Medium};
        assert_eq!(
            mapped,
            [Critical, Critical, Critical, High, Medium, Low, Low, Info]
        );
        assert_eq!(
            AlertCategory::from(Category::HighRiskOperation),
            AlertCategory::HighRiskOperation
        );
    }
}
