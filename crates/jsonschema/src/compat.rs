//! JSON Schema compatibility by Confluent Schema Registry's rules.
//!
//! Ported from Confluent's `io.confluent.kafka.schemaregistry.json.diff` package
//! (`json-schema-provider/src/main/java/...`, repository `confluentinc/schema-registry`):
//! `SchemaDiff.java` (commit 658073b7: the compatible changes, references followed, the
//! special cases of a combined schema on one side only, `allOf` narrowed to one member, the
//! false and empty schemas), `Difference.java` (43688af4 and 08e6ae23: the kinds and their
//! descriptions), `ObjectSchemaDiff.java` (0de3fd45: `required`, properties against open, closed
//! and partially open content models, dependencies, `additionalProperties`, property counts),
//! `ArraySchemaDiff.java` (c9c03d45/115509ba: `items` as one schema or a tuple, open, closed and
//! partially open content models with `additionalItems` and `unevaluatedItems`, item counts,
//! `uniqueItems`, `minContains`/`maxContains`), `CombinedSchemaDiff.java` (10a588d0: criteria,
//! members matched by maximum cardinality matching, duplicates collapsed), `NumberSchemaDiff.java`
//! (3fe380b8), `StringSchemaDiff.java` (91f72175), `EnumSchemaDiff.java` (748d64e1),
//! `ConstSchemaDiff.java` (6fd93942), `NotSchemaDiff.java` (70a81335) and `Context.java` (26cde791:
//! comparisons memoised per pair of schemas, a pair met again while it is being compared taken
//! as compatible). Confluent's test cases (`json-schema-provider/src/test/resources/
//! diff-schema-examples.json`, `diff-combined-schema-examples.json` and
//! `diff-schema-examples-2020-12.json`) are ported, with attribution, in this crate's
//! `tests/data/compat/`.
//!
//! Confluent diffs two schemas as `SchemaDiff.compare(original, update)`; a BACKWARD check is
//! `compare(existing, candidate)`, so [`Checker::can_read`]`(reader, writer)` is
//! `compare(writer, reader)` keeping the kinds outside `SchemaDiff.COMPATIBLE_CHANGES`
//! ([`DifferenceKind::is_compatible`]). Schemas are read as Confluent's everit loader reads
//! them (see the crate's model: `{"type": "string", "enum": [...]}` is an `allOf` of an enum and
//! a string schema, a list of types an `anyOf`, ...). The rules, in short:
//! - a changed type is incompatible, except that anything may become the empty schema (`{}`,
//!   `true`) and `false` may become anything; `integer` to `number` is compatible, back is not;
//! - a combined schema on one side only: a writer schema matched by one member of a reader's
//!   `anyOf`/`oneOf` is compatible (`SUM_TYPE_EXTENDED`), as is a writer `allOf` with one member
//!   that matches the reader (`PRODUCT_TYPE_NARROWED`);
//! - combined on both sides: the criterion may widen (`allOf`/`oneOf` to `anyOf`, a singleton to
//!   `oneOf`), members may be added to `anyOf`/`oneOf` or removed from `allOf`, and every member
//!   of the smaller side must be matched, one to one, with a compatible member of the other;
//! - objects: with an open content model (no `additionalProperties` schema or `false`, no
//!   `patternProperties`), properties may be removed and only properties with the empty schema
//!   added; with a closed one, properties may be added (unless required without a default) and
//!   only `false` ones removed; with a partially open one (`patternProperties`, or an
//!   `additionalProperties` schema), a property added or removed must be compatible with the
//!   schema the model gives it; `required` may lose names and gain only ones with defaults;
//!   `additionalProperties` may widen, not narrow;
//! - arrays: the same three content models with tuple `items` and `additionalItems`; `items`
//!   may not appear where there was none; bounds may only widen;
//! - strings, numbers: `maxLength`, `maximum`, `exclusiveMaximum`, `maxItems`, `maxProperties`
//!   may only grow or go; the minimums only shrink or go; `pattern` may only go; `multipleOf`
//!   may only become a divisor or go; `enum` may only gain values; `const` may not change;
//! - `not`: the negated schema may only narrow;
//! - `$ref`: the target is compared, wherever it is (the same document, a dependency).
//!
//! The walk differs from Java's where Java would loop, repeat itself or overflow, never in
//! verdicts:
//! - each pair of schemas is compared once per pass and its differences reused (rebased) where
//!   the pair is met again; a pair met again while it is being compared (a recursive schema)
//!   is taken as compatible, and the check runs again, taking the pairs found incompatible as
//!   incompatible, until no more are found (the greatest fixed point Confluent's later versions
//!   compute), so a recursive schema neither loops nor masks an incompatibility;
//! - at most `max_listed` differences are kept per pair (all are counted), so shared pairs do
//!   not multiply lists; a chain of references deeper than [`MAX_WALK_DEPTH`] nested
//!   comparisons, like a check over its step budget, is [`OverBudget`];
//! - Java iterates hash sets; here properties follow the writer's order, then the reader's
//!   additions; members of combined schemas their order (a maximum matching may pair them
//!   differently from Java's when several matchings exist; the verdict is the same);
//! - `NumberSchemaDiff` compares a decreased `exclusiveMaximum` with the reader's `maximum`
//!   (a typo that can throw); here with its `exclusiveMaximum`; `multipleOf` is compared as exact
//!   decimals (Confluent's newest rule: `0.5` to `10` is `MULTIPLE_OF_EXPANDED`);
//! - Confluent's reserved-property metadata checks (`RESERVED_PROPERTY_*`) need schema metadata,
//!   which this interface does not carry; those kinds are listed but never reported.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::rc::Rc;

use serde_json::Value;

use crate::JsonSchema;
use crate::model::{ArrayKind, Criterion, Kind, Model, NodeId, NumberKind, ObjectKind, StringKind};

/// How many comparisons may nest (one per schema pair on the way down, through properties,
/// items, members and references).
pub const MAX_WALK_DEPTH: usize = 2_000;

macro_rules! kinds {
    ($($variant:ident => $name:literal, $compatible:literal;)*) => {
        /// Confluent's `Difference.Type`: one kind of change between two schemas.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum DifferenceKind {
            $(
                #[doc = $name]
                $variant,
            )*
        }

        impl DifferenceKind {
            /// Every kind, in Confluent's declaration order.
            pub const ALL: &'static [DifferenceKind] = &[$(DifferenceKind::$variant),*];

            /// Confluent's spelling: `"TYPE_CHANGED"`, `"PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL"`.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $(DifferenceKind::$variant => $name,)*
                }
            }

            /// Whether Confluent counts this change as compatible
            /// (`SchemaDiff.COMPATIBLE_CHANGES`).
            pub fn is_compatible(&self) -> bool {
                match self {
                    $(DifferenceKind::$variant => $compatible,)*
                }
            }
        }
    };
}

kinds! {
    IdChanged => "ID_CHANGED", true;
    DescriptionChanged => "DESCRIPTION_CHANGED", true;
    TitleChanged => "TITLE_CHANGED", true;
    DefaultChanged => "DEFAULT_CHANGED", true;
    SchemaAdded => "SCHEMA_ADDED", false;
    SchemaRemoved => "SCHEMA_REMOVED", true;
    TypeExtended => "TYPE_EXTENDED", true;
    TypeNarrowed => "TYPE_NARROWED", false;
    TypeChanged => "TYPE_CHANGED", false;
    MaxLengthAdded => "MAX_LENGTH_ADDED", false;
    MaxLengthRemoved => "MAX_LENGTH_REMOVED", true;
    MaxLengthIncreased => "MAX_LENGTH_INCREASED", true;
    MaxLengthDecreased => "MAX_LENGTH_DECREASED", false;
    MinLengthAdded => "MIN_LENGTH_ADDED", false;
    MinLengthRemoved => "MIN_LENGTH_REMOVED", true;
    MinLengthIncreased => "MIN_LENGTH_INCREASED", false;
    MinLengthDecreased => "MIN_LENGTH_DECREASED", true;
    PatternAdded => "PATTERN_ADDED", false;
    PatternRemoved => "PATTERN_REMOVED", true;
    PatternChanged => "PATTERN_CHANGED", false;
    MaximumAdded => "MAXIMUM_ADDED", false;
    MaximumRemoved => "MAXIMUM_REMOVED", true;
    MaximumIncreased => "MAXIMUM_INCREASED", true;
    MaximumDecreased => "MAXIMUM_DECREASED", false;
    MinimumAdded => "MINIMUM_ADDED", false;
    MinimumRemoved => "MINIMUM_REMOVED", true;
    MinimumIncreased => "MINIMUM_INCREASED", false;
    MinimumDecreased => "MINIMUM_DECREASED", true;
    ExclusiveMaximumAdded => "EXCLUSIVE_MAXIMUM_ADDED", false;
    ExclusiveMaximumRemoved => "EXCLUSIVE_MAXIMUM_REMOVED", true;
    ExclusiveMaximumIncreased => "EXCLUSIVE_MAXIMUM_INCREASED", true;
    ExclusiveMaximumDecreased => "EXCLUSIVE_MAXIMUM_DECREASED", false;
    ExclusiveMinimumAdded => "EXCLUSIVE_MINIMUM_ADDED", false;
    ExclusiveMinimumRemoved => "EXCLUSIVE_MINIMUM_REMOVED", true;
    ExclusiveMinimumIncreased => "EXCLUSIVE_MINIMUM_INCREASED", false;
    ExclusiveMinimumDecreased => "EXCLUSIVE_MINIMUM_DECREASED", true;
    MultipleOfAdded => "MULTIPLE_OF_ADDED", false;
    MultipleOfRemoved => "MULTIPLE_OF_REMOVED", true;
    MultipleOfExpanded => "MULTIPLE_OF_EXPANDED", false;
    MultipleOfReduced => "MULTIPLE_OF_REDUCED", true;
    MultipleOfChanged => "MULTIPLE_OF_CHANGED", false;
    RequiredAttributeAdded => "REQUIRED_ATTRIBUTE_ADDED", false;
    RequiredAttributeWithDefaultAdded => "REQUIRED_ATTRIBUTE_WITH_DEFAULT_ADDED", true;
    RequiredAttributeRemoved => "REQUIRED_ATTRIBUTE_REMOVED", true;
    MaxPropertiesAdded => "MAX_PROPERTIES_ADDED", false;
    MaxPropertiesRemoved => "MAX_PROPERTIES_REMOVED", true;
    MaxPropertiesIncreased => "MAX_PROPERTIES_INCREASED", true;
    MaxPropertiesDecreased => "MAX_PROPERTIES_DECREASED", false;
    MinPropertiesAdded => "MIN_PROPERTIES_ADDED", false;
    MinPropertiesRemoved => "MIN_PROPERTIES_REMOVED", true;
    MinPropertiesIncreased => "MIN_PROPERTIES_INCREASED", false;
    MinPropertiesDecreased => "MIN_PROPERTIES_DECREASED", true;
    AdditionalPropertiesAdded => "ADDITIONAL_PROPERTIES_ADDED", true;
    AdditionalPropertiesRemoved => "ADDITIONAL_PROPERTIES_REMOVED", false;
    AdditionalPropertiesExtended => "ADDITIONAL_PROPERTIES_EXTENDED", true;
    AdditionalPropertiesNarrowed => "ADDITIONAL_PROPERTIES_NARROWED", false;
    DependencyArrayAdded => "DEPENDENCY_ARRAY_ADDED", false;
    DependencyArrayRemoved => "DEPENDENCY_ARRAY_REMOVED", true;
    DependencyArrayExtended => "DEPENDENCY_ARRAY_EXTENDED", false;
    DependencyArrayNarrowed => "DEPENDENCY_ARRAY_NARROWED", true;
    DependencyArrayChanged => "DEPENDENCY_ARRAY_CHANGED", false;
    DependencySchemaAdded => "DEPENDENCY_SCHEMA_ADDED", false;
    DependencySchemaRemoved => "DEPENDENCY_SCHEMA_REMOVED", true;
    PropertyAddedToOpenContentModel => "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", false;
    RequiredPropertyAddedToOpenContentModel => "REQUIRED_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", false;
    RequiredPropertyWithDefaultAddedToOpenContentModel => "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_OPEN_CONTENT_MODEL", false;
    OptionalPropertyAddedToOpenContentModel => "OPTIONAL_PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL", false;
    PropertyWithEmptySchemaAddedToOpenContentModel => "PROPERTY_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL", true;
    RequiredPropertyAddedToUnopenContentModel => "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", false;
    RequiredPropertyWithDefaultAddedToUnopenContentModel => "REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL", true;
    OptionalPropertyAddedToUnopenContentModel => "OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL", true;
    PropertyRemovedFromOpenContentModel => "PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL", true;
    PropertyWithFalseRemovedFromClosedContentModel => "PROPERTY_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL", true;
    PropertyRemovedFromClosedContentModel => "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL", false;
    PropertyRemovedIsCoveredByPartiallyOpenContentModel => "PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", true;
    PropertyRemovedNotCoveredByPartiallyOpenContentModel => "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", false;
    PropertyAddedIsCoveredByPartiallyOpenContentModel => "PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", true;
    PropertyAddedNotCoveredByPartiallyOpenContentModel => "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", false;
    ReservedPropertyRemoved => "RESERVED_PROPERTY_REMOVED", false;
    ReservedPropertyConflictsWithProperty => "RESERVED_PROPERTY_CONFLICTS_WITH_PROPERTY", false;
    UnevaluatedPropertiesAdded => "UNEVALUATED_PROPERTIES_ADDED", false;
    UnevaluatedPropertiesRemoved => "UNEVALUATED_PROPERTIES_REMOVED", false;
    UnevaluatedPropertiesExtended => "UNEVALUATED_PROPERTIES_EXTENDED", false;
    UnevaluatedPropertiesNarrowed => "UNEVALUATED_PROPERTIES_NARROWED", false;
    MaxItemsAdded => "MAX_ITEMS_ADDED", false;
    MaxItemsRemoved => "MAX_ITEMS_REMOVED", true;
    MaxItemsIncreased => "MAX_ITEMS_INCREASED", true;
    MaxItemsDecreased => "MAX_ITEMS_DECREASED", false;
    MinItemsAdded => "MIN_ITEMS_ADDED", false;
    MinItemsRemoved => "MIN_ITEMS_REMOVED", true;
    MinItemsIncreased => "MIN_ITEMS_INCREASED", false;
    MinItemsDecreased => "MIN_ITEMS_DECREASED", true;
    MaxContainsAdded => "MAX_CONTAINS_ADDED", false;
    MaxContainsRemoved => "MAX_CONTAINS_REMOVED", false;
    MaxContainsIncreased => "MAX_CONTAINS_INCREASED", false;
    MaxContainsDecreased => "MAX_CONTAINS_DECREASED", false;
    MinContainsAdded => "MIN_CONTAINS_ADDED", false;
    MinContainsRemoved => "MIN_CONTAINS_REMOVED", false;
    MinContainsIncreased => "MIN_CONTAINS_INCREASED", false;
    MinContainsDecreased => "MIN_CONTAINS_DECREASED", false;
    UniqueItemsAdded => "UNIQUE_ITEMS_ADDED", false;
    UniqueItemsRemoved => "UNIQUE_ITEMS_REMOVED", true;
    AdditionalItemsAdded => "ADDITIONAL_ITEMS_ADDED", true;
    AdditionalItemsRemoved => "ADDITIONAL_ITEMS_REMOVED", false;
    AdditionalItemsExtended => "ADDITIONAL_ITEMS_EXTENDED", true;
    AdditionalItemsNarrowed => "ADDITIONAL_ITEMS_NARROWED", false;
    UnevaluatedItemsAdded => "UNEVALUATED_ITEMS_ADDED", false;
    UnevaluatedItemsRemoved => "UNEVALUATED_ITEMS_REMOVED", false;
    UnevaluatedItemsExtended => "UNEVALUATED_ITEMS_EXTENDED", false;
    UnevaluatedItemsNarrowed => "UNEVALUATED_ITEMS_NARROWED", false;
    ItemAddedToOpenContentModel => "ITEM_ADDED_TO_OPEN_CONTENT_MODEL", false;
    ItemWithEmptySchemaAddedToOpenContentModel => "ITEM_WITH_EMPTY_SCHEMA_ADDED_TO_OPEN_CONTENT_MODEL", true;
    ItemAddedToClosedContentModel => "ITEM_ADDED_TO_CLOSED_CONTENT_MODEL", true;
    ItemRemovedFromOpenContentModel => "ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL", true;
    ItemWithFalseRemovedFromClosedContentModel => "ITEM_WITH_FALSE_REMOVED_FROM_CLOSED_CONTENT_MODEL", true;
    ItemRemovedFromClosedContentModel => "ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL", false;
    ItemRemovedIsCoveredByPartiallyOpenContentModel => "ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", true;
    ItemRemovedNotCoveredByPartiallyOpenContentModel => "ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", false;
    ItemAddedIsCoveredByPartiallyOpenContentModel => "ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", true;
    ItemAddedNotCoveredByPartiallyOpenContentModel => "ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL", false;
    EnumArrayExtended => "ENUM_ARRAY_EXTENDED", true;
    EnumArrayNarrowed => "ENUM_ARRAY_NARROWED", false;
    EnumArrayChanged => "ENUM_ARRAY_CHANGED", false;
    CombinedTypeExtended => "COMBINED_TYPE_EXTENDED", true;
    CombinedTypeChanged => "COMBINED_TYPE_CHANGED", false;
    ProductTypeExtended => "PRODUCT_TYPE_EXTENDED", false;
    ProductTypeNarrowed => "PRODUCT_TYPE_NARROWED", true;
    SumTypeExtended => "SUM_TYPE_EXTENDED", true;
    SumTypeNarrowed => "SUM_TYPE_NARROWED", false;
    CombinedTypeSubschemasChanged => "COMBINED_TYPE_SUBSCHEMAS_CHANGED", false;
    NotTypeExtended => "NOT_TYPE_EXTENDED", false;
    NotTypeNarrowed => "NOT_TYPE_NARROWED", true;
}

impl DifferenceKind {
    /// The kind Confluent spells `name`, exactly.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|kind| kind.as_str() == name)
    }

    /// Confluent's description template (`Difference.error()`): `{p}` is the path, `{r}` the
    /// schema that changed (the reader, Confluent's "new"), `{w}` the other. Empty where
    /// Confluent has none.
    fn template(self) -> &'static str {
        use DifferenceKind as K;
        match self {
            K::MaximumAdded
            | K::MinimumAdded
            | K::ExclusiveMaximumAdded
            | K::ExclusiveMinimumAdded
            | K::MultipleOfAdded
            | K::MaxLengthAdded
            | K::MinLengthAdded
            | K::PatternAdded
            | K::RequiredAttributeAdded
            | K::MaxPropertiesAdded
            | K::MinPropertiesAdded
            | K::DependencyArrayAdded
            | K::DependencySchemaAdded
            | K::MaxItemsAdded
            | K::MinItemsAdded
            | K::MaxContainsAdded
            | K::MinContainsAdded
            | K::UniqueItemsAdded
            | K::AdditionalItemsRemoved
            | K::AdditionalPropertiesRemoved
            | K::UnevaluatedPropertiesRemoved
            | K::UnevaluatedItemsRemoved => {
                "The keyword at path '{p}' in the {r} schema is not present in the {w} schema"
            }
            K::MinLengthIncreased
            | K::MinimumIncreased
            | K::ExclusiveMinimumIncreased
            | K::MinPropertiesIncreased
            | K::MultipleOfExpanded
            | K::MinItemsIncreased
            | K::MinContainsIncreased => {
                "The value at path '{p}' in the {r} schema is more than its value in the {w} schema"
            }
            K::MaxLengthDecreased
            | K::MaximumDecreased
            | K::MaxItemsDecreased
            | K::MaxContainsDecreased
            | K::ExclusiveMaximumDecreased
            | K::MaxPropertiesDecreased => {
                "The value at path '{p}' in the {r} schema is less than its value in the {w} schema"
            }
            K::PatternChanged | K::MultipleOfChanged | K::DependencyArrayChanged => {
                "The value at path '{p}' is different between the {r} and {w} schema"
            }
            K::AdditionalItemsNarrowed
            | K::EnumArrayNarrowed
            | K::SumTypeNarrowed
            | K::AdditionalPropertiesNarrowed
            | K::UnevaluatedPropertiesNarrowed
            | K::UnevaluatedItemsNarrowed => {
                "An array or combined type at path '{p}' has fewer elements in the {r} schema than the {w} schema"
            }
            K::DependencyArrayExtended
            | K::ProductTypeExtended
            | K::SumTypeExtended
            | K::NotTypeExtended => {
                "An array or combined type at path '{p}' has more elements in the {r} schema than the {w} schema"
            }
            K::TypeChanged
            | K::TypeNarrowed
            | K::CombinedTypeChanged
            | K::CombinedTypeSubschemasChanged
            | K::EnumArrayChanged => {
                "A type at path '{p}' is different between the {r} schema and the {w} schema"
            }
            K::RequiredPropertyAddedToOpenContentModel
            | K::RequiredPropertyWithDefaultAddedToOpenContentModel
            | K::OptionalPropertyAddedToOpenContentModel
            | K::ItemAddedToOpenContentModel => {
                "The {r} schema has an open content model and has a property or item at path '{p}' which is missing in the {w} schema"
            }
            K::RequiredPropertyAddedToUnopenContentModel => {
                "The {r} schema has an unopen content model and has a required property at path '{p}' which is missing in the {w} schema"
            }
            K::PropertyRemovedFromClosedContentModel | K::ItemRemovedFromClosedContentModel => {
                "The {r} schema has a closed content model and is missing a property or item present at path '{p}' in the {w} schema"
            }
            K::PropertyRemovedNotCoveredByPartiallyOpenContentModel
            | K::ItemRemovedNotCoveredByPartiallyOpenContentModel => {
                "A property or item is missing in the {r} schema but present at path '{p}' in the {w} schema and is not covered by its partially open content model"
            }
            K::PropertyAddedNotCoveredByPartiallyOpenContentModel
            | K::ItemAddedNotCoveredByPartiallyOpenContentModel => {
                "The {r} schema has a property or item at path '{p}' which is missing in the {w} schema and is not covered by its partially open content model"
            }
            K::ReservedPropertyRemoved => {
                "The {r} schema has reserved property '{p}' removed from its metadata which is present in the {w} schema."
            }
            K::ReservedPropertyConflictsWithProperty => {
                "The {r} schema has property at path '{p}' that conflicts with the reserved properties which is missing in the {w} schema."
            }
            _ => "",
        }
    }

    /// A description for the kinds Confluent describes with an empty string.
    fn fallback(self) -> &'static str {
        use DifferenceKind as K;
        match self {
            K::SchemaAdded => {
                "The {r} schema has a schema at path '{p}' which is missing in the {w} schema"
            }
            K::PropertyAddedToOpenContentModel => {
                "The {r} schema has an open content model and has a property at path '{p}' which is missing in the {w} schema"
            }
            K::UnevaluatedPropertiesAdded
            | K::UnevaluatedPropertiesExtended
            | K::UnevaluatedItemsAdded
            | K::UnevaluatedItemsExtended
            | K::MaxContainsRemoved
            | K::MaxContainsIncreased
            | K::MinContainsRemoved
            | K::MinContainsDecreased => {
                "The value at path '{p}' is different between the {r} and {w} schema"
            }
            _ => "The change at path '{p}' between the {w} schema and the {r} schema is compatible",
        }
    }
}

impl fmt::Display for DifferenceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One difference between two schemas, as Confluent's `Difference`: an incompatibility when
/// [`Checker::can_read`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incompatibility {
    /// What changed.
    pub kind: DifferenceKind,
    /// Where, as Confluent's JSON path: `#/` then the keywords and names down from the root,
    /// e.g. `#/properties/a`, `#/items/2`, `#/properties/p/oneOf/0/maxLength`, `#/` for the root.
    /// A difference inside a `$ref` target is at the place of the `$ref`.
    pub location: String,
    /// The change in a sentence (Confluent's description, reader and writer named).
    pub message: String,
}

impl Incompatibility {
    /// Confluent's rendering (`Difference.toString()`), e.g.
    /// `{errorType:"TYPE_CHANGED", description:"A type at path '#/properties/a' is different
    /// between the new schema and the old schema"}`, with `reader` and `writer` naming the
    /// schemas (`"new"` and `"old"` for a BACKWARD check). Compatible kinds have an empty
    /// description, as in Confluent.
    pub fn confluent_error(&self, reader: &str, writer: &str) -> String {
        format!(
            "{{errorType:\"{}\", description:\"{}\"}}",
            self.kind,
            fill(self.kind.template(), &self.location, reader, writer)
        )
    }
}

fn fill(template: &str, path: &str, reader: &str, writer: &str) -> String {
    template
        .replace("{p}", path)
        .replace("{r}", reader)
        .replace("{w}", writer)
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}: {}", self.kind, self.location, self.message)
    }
}

/// What a check found: the first differences (at most the checker's `max_listed`) and how
/// many there are in all.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// The first differences found, in the walk's order.
    pub incompatibilities: Vec<Incompatibility>,
    /// How many there are, listed or not.
    pub total: u64,
}

impl Report {
    /// Whether nothing was found.
    pub fn is_compatible(&self) -> bool {
        self.total == 0
    }

    /// How many differences are counted but not listed, when some are.
    pub fn unlisted(&self) -> Option<u64> {
        let listed = u64::try_from(self.incompatibilities.len()).unwrap_or(u64::MAX);
        (self.total > listed).then(|| self.total.saturating_sub(listed))
    }
}

/// A check went over the work budget of its [`Checker`] (or nested deeper than
/// [`MAX_WALK_DEPTH`] comparisons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the JSON Schema compatibility check needs more than {max} steps")]
pub struct OverBudget {
    /// The checker's budget.
    pub max: u64,
}

/// A step budget and what has been spent from it.
#[derive(Debug, Clone)]
struct Work {
    max: u64,
    spent: u64,
}

impl Work {
    fn take(&mut self, steps: u64) -> Result<(), OverBudget> {
        self.spent = self.spent.saturating_add(steps);
        if self.spent > self.max {
            Err(OverBudget { max: self.max })
        } else {
            Ok(())
        }
    }
}

/// Compatibility checks within one work budget: every check made with one `Checker` spends
/// from the same budget (a registry checks a candidate against several versions, both ways,
/// with one): one step per pair of schemas compared, per difference copied, per property,
/// member pair and enum value visited; each check lists at most `max_listed` differences (all
/// are counted).
#[derive(Debug, Clone)]
pub struct Checker {
    work: Work,
    max_listed: usize,
}

impl Checker {
    /// A checker with `work` steps for all its checks, listing at most `max_listed` differences
    /// per check.
    pub fn new(work: u64, max_listed: usize) -> Self {
        Checker {
            work: Work {
                max: work,
                spent: 0,
            },
            max_listed,
        }
    }

    /// Steps taken so far, by every check of this checker.
    pub fn work_spent(&self) -> u64 {
        self.work.spent
    }

    /// Can a consumer with `reader` read data written with `writer`? The incompatible
    /// differences of Confluent's `SchemaDiff.compare(writer, reader)` (BACKWARD: reader = the
    /// new schema, writer = the existing one; FORWARD the other way round); none means yes.
    pub fn can_read(
        &mut self,
        reader: &JsonSchema,
        writer: &JsonSchema,
    ) -> Result<Report, OverBudget> {
        self.run(writer, reader, false)
    }

    /// Every difference of Confluent's `SchemaDiff.compare(original, update)`, compatible ones
    /// included (see [`DifferenceKind::is_compatible`]).
    pub fn differences(
        &mut self,
        original: &JsonSchema,
        update: &JsonSchema,
    ) -> Result<Report, OverBudget> {
        self.run(original, update, true)
    }

    fn run(
        &mut self,
        original: &JsonSchema,
        update: &JsonSchema,
        keep_compatible: bool,
    ) -> Result<Report, OverBudget> {
        self.work.take(1)?;
        let limits = Limits {
            cap: self.max_listed,
            keep_compatible,
        };
        let models = [original.model(), update.model()];
        let work = &mut self.work;
        // The walk recurses once per nested comparison: it runs on a thread whose stack takes
        // [`MAX_WALK_DEPTH`] of them. Should no thread start, it runs here, ten times shallower.
        let root = std::thread::scope(|scope| {
            let spawned = std::thread::Builder::new()
                .name("json-schema-compat".to_owned())
                .stack_size(WALK_STACK_BYTES)
                .spawn_scoped(scope, || walk(models, work, limits, MAX_WALK_DEPTH));
            match spawned {
                Ok(handle) => handle.join().ok(),
                Err(_) => None,
            }
        });
        let root = match root {
            Some(root) => root?,
            None => walk(models, &mut self.work, limits, MAX_WALK_DEPTH / 10)?,
        };
        let (reader, writer) = ("reader", "writer");
        let incompatibilities = root
            .listed
            .iter()
            .filter(|diff| keep_compatible || !diff.kind.is_compatible())
            .take(self.max_listed)
            .map(|diff| {
                let location = format!("#/{}", diff.path);
                let template = match diff.kind.template() {
                    "" => diff.kind.fallback(),
                    template => template,
                };
                Incompatibility {
                    kind: diff.kind,
                    message: fill(template, &location, reader, writer),
                    location,
                }
            })
            .collect();
        Ok(Report {
            incompatibilities,
            total: if keep_compatible {
                root.total
            } else {
                root.incompatible
            },
        })
    }
}

/// The stack of the thread a check runs on: room for [`MAX_WALK_DEPTH`] nested comparisons
/// (reserved address space; only what the walk touches is committed).
const WALK_STACK_BYTES: usize = 256 * 1024 * 1024;

/// Compares the roots of two models, pass after pass until the pairs found incompatible stop
/// growing: the differences of the root pair.
fn walk(
    models: [&Model; 2],
    work: &mut Work,
    limits: Limits,
    max_depth: usize,
) -> Result<Diffs, OverBudget> {
    let [original, update] = models;
    let root = Pair {
        original: original.deref(original.root()),
        update: update.deref(update.root()),
        flipped: false,
    };
    let mut assumed: HashSet<Pair> = HashSet::new();
    loop {
        let mut walk = Walk {
            models,
            work: &mut *work,
            limits,
            memo: HashMap::new(),
            in_progress: HashSet::new(),
            assumed: &assumed,
            found: HashSet::new(),
            patterns: HashMap::new(),
            depth: 0,
            max_depth,
        };
        let result = walk.pair(root)?;
        let found = std::mem::take(&mut walk.found);
        if found.is_subset(&assumed) {
            return Ok(Diffs::clone(&result));
        }
        assumed.extend(found);
    }
}

/// A pair of schemas compared: `original` from the original (writer) schema and `update` from
/// the updated (reader) one, or the other way round when `flipped` (inside `not`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Pair {
    original: NodeId,
    update: NodeId,
    flipped: bool,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Differences kept per list (incompatible ones, and compatible ones when kept).
    cap: usize,
    keep_compatible: bool,
}

/// One difference, its path relative to the pair it was found in (no leading `#/`).
#[derive(Debug, Clone)]
struct Diff {
    kind: DifferenceKind,
    path: String,
}

/// The differences of a comparison: the first ones, and counts of all.
#[derive(Debug, Clone, Default)]
struct Diffs {
    listed: Vec<Diff>,
    listed_incompatible: usize,
    listed_compatible: usize,
    total: u64,
    incompatible: u64,
    /// Whether the result took a pair known to be incompatible as incompatible, without its
    /// differences (a recursive pair met again while being compared).
    assumed: bool,
}

impl Diffs {
    fn is_compatible(&self) -> bool {
        self.incompatible == 0 && !self.assumed
    }

    fn keep(&mut self, limits: Limits, diff: Diff) {
        if diff.kind.is_compatible() {
            if limits.keep_compatible && self.listed_compatible < limits.cap {
                self.listed_compatible = self.listed_compatible.saturating_add(1);
                self.listed.push(diff);
            }
        } else if self.listed_incompatible < limits.cap {
            self.listed_incompatible = self.listed_incompatible.saturating_add(1);
            self.listed.push(diff);
        }
    }

    fn push(&mut self, limits: Limits, diff: Diff) {
        self.total = self.total.saturating_add(1);
        if !diff.kind.is_compatible() {
            self.incompatible = self.incompatible.saturating_add(1);
        }
        self.keep(limits, diff);
    }

    /// Appends `other`, its paths under `prefix`. Returns how many entries were copied.
    fn extend(&mut self, limits: Limits, other: &Diffs, prefix: &str) -> u64 {
        self.total = self.total.saturating_add(other.total);
        self.incompatible = self.incompatible.saturating_add(other.incompatible);
        self.assumed |= other.assumed;
        let mut copied = 0u64;
        for diff in &other.listed {
            let full = self.listed_incompatible >= limits.cap
                && (!limits.keep_compatible || self.listed_compatible >= limits.cap);
            if full {
                break;
            }
            let path = match (prefix.is_empty(), diff.path.is_empty()) {
                (true, _) => diff.path.clone(),
                (false, true) => prefix.to_owned(),
                (false, false) => format!("{prefix}/{}", diff.path),
            };
            self.keep(
                limits,
                Diff {
                    kind: diff.kind,
                    path,
                },
            );
            copied = copied.saturating_add(1);
        }
        copied
    }
}

/// Confluent's `Context`: the path within the pair being compared, and what was found.
struct Ctx {
    path: Vec<String>,
    diffs: Diffs,
}

impl Ctx {
    fn root() -> Ctx {
        Ctx {
            path: Vec::new(),
            diffs: Diffs::default(),
        }
    }

    fn sub(&self) -> Ctx {
        Ctx {
            path: self.path.clone(),
            diffs: Diffs::default(),
        }
    }

    fn path(&self) -> String {
        self.path.join("/")
    }

    fn add(&mut self, limits: Limits, kind: DifferenceKind) {
        let path = self.path();
        self.diffs.push(limits, Diff { kind, path });
    }

    fn add_at(&mut self, limits: Limits, attribute: &str, kind: DifferenceKind) {
        self.path.push(attribute.to_owned());
        self.add(limits, kind);
        self.path.pop();
    }
}

/// One pass of a check.
struct Walk<'a> {
    /// The original (writer) schema's model and the update's (reader's).
    models: [&'a Model; 2],
    work: &'a mut Work,
    limits: Limits,
    memo: HashMap<Pair, Rc<Diffs>>,
    in_progress: HashSet<Pair>,
    /// Pairs found incompatible by earlier passes.
    assumed: &'a HashSet<Pair>,
    /// Pairs found incompatible by this pass.
    found: HashSet<Pair>,
    /// Compiled `patternProperties` keys (`None`: not a pattern the engine takes).
    patterns: HashMap<String, Option<fancy_regex::Regex>>,
    depth: usize,
    max_depth: usize,
}

/// A schema of one side of a pair.
#[derive(Clone, Copy)]
struct Side {
    /// 0: the original schema's model, 1: the update's.
    model: usize,
    id: NodeId,
}

impl<'a> Walk<'a> {
    fn kind(&self, side: Side) -> &'a Kind {
        let model = self
            .models
            .get(side.model)
            .copied()
            .unwrap_or(self.models[0]);
        &model.node(side.id).kind
    }

    fn node(&self, side: Side) -> &'a crate::model::Node {
        let model = self
            .models
            .get(side.model)
            .copied()
            .unwrap_or(self.models[0]);
        model.node(side.id)
    }

    fn deref(&self, side: Side) -> Side {
        let model = self
            .models
            .get(side.model)
            .copied()
            .unwrap_or(self.models[0]);
        Side {
            model: side.model,
            id: model.deref(side.id),
        }
    }

    fn add(&mut self, ctx: &mut Ctx, kind: DifferenceKind) {
        ctx.add(self.limits, kind);
    }

    fn add_at(&mut self, ctx: &mut Ctx, attribute: &str, kind: DifferenceKind) {
        ctx.add_at(self.limits, attribute, kind);
    }

    /// Appends a sub-context's differences (already at full paths).
    fn append(&mut self, ctx: &mut Ctx, sub: &Ctx) -> Result<(), OverBudget> {
        let copied = ctx.diffs.extend(self.limits, &sub.diffs, "");
        self.work.take(copied.saturating_add(1))
    }

    /// `SchemaDiff.compare(ctx, original, update)`.
    fn compare(
        &mut self,
        ctx: &mut Ctx,
        original: Option<Side>,
        update: Option<Side>,
    ) -> Result<(), OverBudget> {
        let (original, update) = match (original, update) {
            (None, None) => return Ok(()),
            (None, Some(_)) => {
                self.add(ctx, DifferenceKind::SchemaAdded);
                return Ok(());
            }
            (Some(_), None) => {
                self.add(ctx, DifferenceKind::SchemaRemoved);
                return Ok(());
            }
            (Some(original), Some(update)) => (original, update),
        };
        let original = self.deref(original);
        let update = self.deref(update);
        let pair = Pair {
            original: original.id,
            update: update.id,
            flipped: original.model == 1,
        };
        let result = self.pair(pair)?;
        let copied = ctx.diffs.extend(self.limits, &result, &ctx.path());
        self.work.take(copied.saturating_add(1))
    }

    /// The differences of a pair, relative to it: memoised, cycles taken as compatible (or as
    /// incompatible when an earlier pass found the pair so).
    fn pair(&mut self, pair: Pair) -> Result<Rc<Diffs>, OverBudget> {
        if let Some(found) = self.memo.get(&pair) {
            return Ok(Rc::clone(found));
        }
        if self.in_progress.contains(&pair) {
            let assumed = self.assumed.contains(&pair);
            return Ok(Rc::new(Diffs {
                assumed,
                ..Diffs::default()
            }));
        }
        if self.depth >= self.max_depth {
            return Err(OverBudget { max: self.work.max });
        }
        self.work.take(1)?;
        self.in_progress.insert(pair);
        self.depth = self.depth.saturating_add(1);
        let (a, b) = if pair.flipped { (1, 0) } else { (0, 1) };
        let mut ctx = Ctx::root();
        let outcome = self.compare_pair(
            &mut ctx,
            Side {
                model: a,
                id: pair.original,
            },
            Side {
                model: b,
                id: pair.update,
            },
        );
        self.depth = self.depth.saturating_sub(1);
        self.in_progress.remove(&pair);
        outcome?;
        let result = Rc::new(ctx.diffs);
        if !result.is_compatible() {
            self.found.insert(pair);
        }
        self.memo.insert(pair, Rc::clone(&result));
        Ok(result)
    }

    /// The body of `SchemaDiff.compare` once references are followed.
    fn compare_pair(
        &mut self,
        ctx: &mut Ctx,
        original: Side,
        update: Side,
    ) -> Result<(), OverBudget> {
        let original_kind = self.kind(original);
        let update_kind = self.kind(update);
        match (original_kind, update_kind) {
            (Kind::Combined { .. }, Kind::Combined { .. }) => {}
            (
                _,
                Kind::Combined {
                    criterion,
                    subschemas,
                },
            ) => {
                let members: Vec<Side> = subschemas
                    .iter()
                    .map(|id| Side {
                        model: update.model,
                        id: *id,
                    })
                    .collect();
                if let [only] = members.as_slice() {
                    let mut sub = ctx.sub();
                    self.compare(&mut sub, Some(original), Some(*only))?;
                    if sub.diffs.is_compatible() {
                        return self.append(ctx, &sub);
                    }
                } else if matches!(criterion, Criterion::Any | Criterion::One) {
                    for member in members {
                        let mut sub = ctx.sub();
                        self.compare(&mut sub, Some(original), Some(member))?;
                        if sub.diffs.is_compatible() {
                            self.append(ctx, &sub)?;
                            self.add(ctx, DifferenceKind::SumTypeExtended);
                            return Ok(());
                        }
                    }
                }
            }
            (
                Kind::Combined {
                    criterion,
                    subschemas,
                },
                _,
            ) => {
                let members: Vec<Side> = subschemas
                    .iter()
                    .map(|id| Side {
                        model: original.model,
                        id: *id,
                    })
                    .collect();
                if let [only] = members.as_slice() {
                    let mut sub = ctx.sub();
                    self.compare(&mut sub, Some(*only), Some(update))?;
                    if sub.diffs.is_compatible() {
                        return self.append(ctx, &sub);
                    }
                } else if *criterion == Criterion::All {
                    for member in members {
                        let mut sub = ctx.sub();
                        self.compare(&mut sub, Some(member), Some(update))?;
                        if sub.diffs.is_compatible() {
                            self.append(ctx, &sub)?;
                            self.add(ctx, DifferenceKind::ProductTypeNarrowed);
                            return Ok(());
                        }
                    }
                }
            }
            _ => {}
        }

        if original_kind.class() != update_kind.class() {
            // TrueSchema extends EmptySchema: anything may become `{}` or `true`, `false` may
            // become anything.
            if !matches!(original_kind, Kind::False)
                && !matches!(update_kind, Kind::True | Kind::Empty)
            {
                self.add(ctx, DifferenceKind::TypeChanged);
            }
            return Ok(());
        }

        let original_common = &self.node(original).common;
        let update_common = &self.node(update).common;
        if original_common.id != update_common.id {
            self.add(ctx, DifferenceKind::IdChanged);
        }
        if original_common.title != update_common.title {
            self.add(ctx, DifferenceKind::TitleChanged);
        }
        if original_common.description != update_common.description {
            self.add(ctx, DifferenceKind::DescriptionChanged);
        }
        if original_common.default != update_common.default {
            self.add(ctx, DifferenceKind::DefaultChanged);
        }

        match (original_kind, update_kind) {
            (Kind::String(a), Kind::String(b)) => {
                self.strings(ctx, a, b);
                Ok(())
            }
            (Kind::Number(a), Kind::Number(b)) => {
                self.numbers(ctx, a, b);
                Ok(())
            }
            (Kind::Const(a), Kind::Const(b)) => {
                if a != b {
                    self.add_at(ctx, "const", DifferenceKind::EnumArrayChanged);
                }
                Ok(())
            }
            (Kind::Enum(a), Kind::Enum(b)) => self.enums(ctx, a, b),
            (
                Kind::Combined {
                    criterion: a_criterion,
                    subschemas: a_members,
                },
                Kind::Combined {
                    criterion: b_criterion,
                    subschemas: b_members,
                },
            ) => self.combined(
                ctx,
                (original.model, *a_criterion, a_members),
                (update.model, *b_criterion, b_members),
            ),
            (Kind::Not(a), Kind::Not(b)) => {
                ctx.path.push("not".to_owned());
                let mut sub = ctx.sub();
                // Reversed: the negated schemas are compared update against original.
                let outcome = self.compare(
                    &mut sub,
                    Some(Side {
                        model: update.model,
                        id: *b,
                    }),
                    Some(Side {
                        model: original.model,
                        id: *a,
                    }),
                );
                if outcome.is_ok() {
                    if sub.diffs.is_compatible() {
                        self.add(ctx, DifferenceKind::NotTypeNarrowed);
                    } else {
                        self.add(ctx, DifferenceKind::NotTypeExtended);
                    }
                }
                ctx.path.pop();
                outcome
            }
            (Kind::Object(a), Kind::Object(b)) => {
                self.objects(ctx, (original.model, a), (update.model, b))
            }
            (Kind::Array(a), Kind::Array(b)) => {
                self.arrays(ctx, (original.model, a), (update.model, b))
            }
            _ => Ok(()),
        }
    }

    /// `StringSchemaDiff`.
    fn strings(&mut self, ctx: &mut Ctx, a: &StringKind, b: &StringKind) {
        use DifferenceKind as K;
        if let Some(kind) = bound(
            a.max_length,
            b.max_length,
            [
                K::MaxLengthAdded,
                K::MaxLengthRemoved,
                K::MaxLengthIncreased,
                K::MaxLengthDecreased,
            ],
        ) {
            self.add_at(ctx, "maxLength", kind);
        }
        if let Some(kind) = bound(
            a.min_length,
            b.min_length,
            [
                K::MinLengthAdded,
                K::MinLengthRemoved,
                K::MinLengthIncreased,
                K::MinLengthDecreased,
            ],
        ) {
            self.add_at(ctx, "minLength", kind);
        }
        match (&a.pattern, &b.pattern) {
            (None, Some(_)) => self.add_at(ctx, "pattern", K::PatternAdded),
            (Some(_), None) => self.add_at(ctx, "pattern", K::PatternRemoved),
            (Some(x), Some(y)) if x != y => self.add_at(ctx, "pattern", K::PatternChanged),
            _ => {}
        }
    }

    /// `NumberSchemaDiff`.
    fn numbers(&mut self, ctx: &mut Ctx, a: &NumberKind, b: &NumberKind) {
        use DifferenceKind as K;
        for (attribute, x, y, kinds) in [
            (
                "maximum",
                a.maximum,
                b.maximum,
                [
                    K::MaximumAdded,
                    K::MaximumRemoved,
                    K::MaximumIncreased,
                    K::MaximumDecreased,
                ],
            ),
            (
                "minimum",
                a.minimum,
                b.minimum,
                [
                    K::MinimumAdded,
                    K::MinimumRemoved,
                    K::MinimumIncreased,
                    K::MinimumDecreased,
                ],
            ),
            (
                "exclusiveMaximum",
                a.exclusive_maximum,
                b.exclusive_maximum,
                [
                    K::ExclusiveMaximumAdded,
                    K::ExclusiveMaximumRemoved,
                    K::ExclusiveMaximumIncreased,
                    K::ExclusiveMaximumDecreased,
                ],
            ),
            (
                "exclusiveMinimum",
                a.exclusive_minimum,
                b.exclusive_minimum,
                [
                    K::ExclusiveMinimumAdded,
                    K::ExclusiveMinimumRemoved,
                    K::ExclusiveMinimumIncreased,
                    K::ExclusiveMinimumDecreased,
                ],
            ),
        ] {
            if let Some(kind) = bound(x, y, kinds) {
                self.add_at(ctx, attribute, kind);
            }
        }
        let multiple = match (&a.multiple_of, &b.multiple_of) {
            (None, None) => None,
            (None, Some(_)) => Some(K::MultipleOfAdded),
            (Some(_), None) => Some(K::MultipleOfRemoved),
            (Some(x), Some(y)) => {
                let (x, y) = (Decimal::parse(x), Decimal::parse(y));
                match (x, y) {
                    (Some(x), Some(y)) if x.same(&y) => None,
                    (Some(x), Some(y)) if y.is_multiple_of(&x) => Some(K::MultipleOfExpanded),
                    (Some(x), Some(y)) if x.is_multiple_of(&y) => Some(K::MultipleOfReduced),
                    _ => Some(K::MultipleOfChanged),
                }
            }
        };
        if let Some(kind) = multiple {
            self.add_at(ctx, "multipleOf", kind);
        }
        if a.requires_integer != b.requires_integer {
            if a.requires_integer {
                self.add(ctx, K::TypeExtended);
            } else {
                self.add(ctx, K::TypeNarrowed);
            }
        }
    }

    /// `EnumSchemaDiff`: the values as sets.
    fn enums(&mut self, ctx: &mut Ctx, a: &[Value], b: &[Value]) -> Result<(), OverBudget> {
        let steps = u64::try_from(a.len().saturating_add(b.len())).unwrap_or(u64::MAX);
        self.work.take(steps)?;
        let set = |values: &[Value]| -> HashSet<String> {
            values
                .iter()
                .map(crate::normalize::normalized_string)
                .collect()
        };
        let (a, b) = (set(a), set(b));
        if a != b {
            let kind = if b.is_superset(&a) {
                DifferenceKind::EnumArrayExtended
            } else if a.is_superset(&b) {
                DifferenceKind::EnumArrayNarrowed
            } else {
                DifferenceKind::EnumArrayChanged
            };
            self.add_at(ctx, "enum", kind);
        }
        Ok(())
    }

    /// `CombinedSchemaDiff`.
    fn combined(
        &mut self,
        ctx: &mut Ctx,
        (a_model, a_criterion, a_members): (usize, Criterion, &[NodeId]),
        (b_model, b_criterion, b_members): (usize, Criterion, &[NodeId]),
    ) -> Result<(), OverBudget> {
        use DifferenceKind as K;
        let changed = if a_criterion == b_criterion {
            None
        } else if b_criterion == Criterion::Any {
            Some(K::CombinedTypeExtended)
        } else if b_criterion == Criterion::One {
            Some(if a_members.len() == 1 {
                K::CombinedTypeExtended
            } else {
                K::CombinedTypeChanged
            })
        } else if a_members.len() == 1 && b_members.len() == 1 {
            Some(K::CombinedTypeExtended)
        } else {
            Some(K::CombinedTypeChanged)
        };
        if let Some(kind) = changed {
            self.add(ctx, kind);
            if kind == K::CombinedTypeChanged {
                return Ok(());
            }
        }
        let originals = self.distinct(a_model, a_members);
        let updates = self.distinct(b_model, b_members);
        let (n, m) = (originals.len(), updates.len());
        if n < m {
            self.add(
                ctx,
                if b_criterion == Criterion::All {
                    K::ProductTypeExtended
                } else {
                    K::SumTypeExtended
                },
            );
        } else if n > m {
            self.add(
                ctx,
                if b_criterion == Criterion::All {
                    K::ProductTypeNarrowed
                } else {
                    K::SumTypeNarrowed
                },
            );
        }
        let mut edges: HashMap<(usize, usize), Ctx> = HashMap::new();
        let mut adjacent: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, original) in originals.iter().enumerate() {
            ctx.path.push(format!("{}/{i}", a_criterion.as_str()));
            for (j, update) in updates.iter().enumerate() {
                let mut sub = ctx.sub();
                let outcome = self.compare(&mut sub, Some(*original), Some(*update));
                if let Err(error) = outcome {
                    ctx.path.pop();
                    return Err(error);
                }
                if sub.diffs.is_compatible() {
                    edges.insert((i, j), sub);
                    if let Some(list) = adjacent.get_mut(i) {
                        list.push(j);
                    }
                }
            }
            ctx.path.pop();
        }
        let matching = maximum_matching(&adjacent, m);
        let mut matched = 0usize;
        for (i, partner) in matching.iter().enumerate() {
            if let Some(j) = partner
                && let Some(sub) = edges.get(&(i, *j))
            {
                matched = matched.saturating_add(1);
                let copied = ctx.diffs.extend(self.limits, &sub.diffs, "");
                self.work.take(copied.saturating_add(1))?;
            }
        }
        if matched < n.min(m) {
            self.add(ctx, K::CombinedTypeSubschemasChanged);
        }
        Ok(())
    }

    /// The members of a combined schema with duplicates (same JSON) collapsed, first kept.
    fn distinct(&self, model: usize, members: &[NodeId]) -> Vec<Side> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut out = Vec::with_capacity(members.len());
        for id in members {
            let side = Side { model, id: *id };
            match &self.node(side).common.fingerprint {
                Some(fingerprint) => {
                    if seen.insert(fingerprint.as_str()) {
                        out.push(side);
                    }
                }
                None => out.push(side),
            }
        }
        out
    }

    /// `ObjectSchemaDiff`.
    fn objects(
        &mut self,
        ctx: &mut Ctx,
        (a_model, a): (usize, &ObjectKind),
        (b_model, b): (usize, &ObjectKind),
    ) -> Result<(), OverBudget> {
        use DifferenceKind as K;
        let side_a = |id: NodeId| Side { model: a_model, id };
        let side_b = |id: NodeId| Side { model: b_model, id };
        let steps = u64::try_from(a.properties.len().saturating_add(b.properties.len()))
            .unwrap_or(u64::MAX);
        self.work.take(steps)?;

        // required
        ctx.path.push("required".to_owned());
        for (name, _) in &a.properties {
            if let Some(b_property) = b.property(name) {
                let was = a.required.iter().any(|r| r == name);
                let is = b.required.iter().any(|r| r == name);
                if was && !is {
                    self.add_at(ctx, name, K::RequiredAttributeRemoved);
                } else if !was && is {
                    let kind = if self.node(side_b(b_property)).common.default.is_some() {
                        K::RequiredAttributeWithDefaultAdded
                    } else {
                        K::RequiredAttributeAdded
                    };
                    self.add_at(ctx, name, kind);
                }
            }
        }
        ctx.path.pop();

        // properties
        ctx.path.push("properties".to_owned());
        let outcome = self.properties(ctx, (a_model, a), (b_model, b));
        ctx.path.pop();
        outcome?;

        // dependencies
        ctx.path.push("dependencies".to_owned());
        let mut names: Vec<&String> = a.property_dependencies.iter().map(|(k, _)| k).collect();
        for (name, _) in &b.property_dependencies {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        for name in names {
            let before = a.property_dependencies.iter().find(|(k, _)| k == name);
            let after = b.property_dependencies.iter().find(|(k, _)| k == name);
            let kind = match (before, after) {
                (_, None) => Some(K::DependencyArrayRemoved),
                (None, Some(_)) => Some(K::DependencyArrayAdded),
                (Some((_, x)), Some((_, y))) => {
                    let x: HashSet<&String> = x.iter().collect();
                    let y: HashSet<&String> = y.iter().collect();
                    if x == y {
                        None
                    } else if y.is_superset(&x) {
                        Some(K::DependencyArrayExtended)
                    } else if x.is_superset(&y) {
                        Some(K::DependencyArrayNarrowed)
                    } else {
                        Some(K::DependencyArrayChanged)
                    }
                }
            };
            if let Some(kind) = kind {
                self.add_at(ctx, name, kind);
            }
        }
        let mut names: Vec<&String> = a.schema_dependencies.iter().map(|(k, _)| k).collect();
        for (name, _) in &b.schema_dependencies {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        for name in names {
            let before = a.schema_dependencies.iter().find(|(k, _)| k == name);
            let after = b.schema_dependencies.iter().find(|(k, _)| k == name);
            ctx.path.push(name.clone());
            let outcome = match (before, after) {
                (_, None) => {
                    self.add(ctx, K::DependencySchemaRemoved);
                    Ok(())
                }
                (None, Some(_)) => {
                    self.add(ctx, K::DependencySchemaAdded);
                    Ok(())
                }
                (Some((_, x)), Some((_, y))) => {
                    self.compare(ctx, Some(side_a(*x)), Some(side_b(*y)))
                }
            };
            ctx.path.pop();
            if let Err(error) = outcome {
                ctx.path.pop();
                return Err(error);
            }
        }
        ctx.path.pop();

        // additionalProperties
        ctx.path.push("additionalProperties".to_owned());
        let outcome = if a.permits_additional != b.permits_additional {
            self.add(
                ctx,
                if b.permits_additional {
                    K::AdditionalPropertiesAdded
                } else {
                    K::AdditionalPropertiesRemoved
                },
            );
            Ok(())
        } else {
            match (a.additional, b.additional) {
                (None, Some(_)) => {
                    self.add(ctx, K::AdditionalPropertiesNarrowed);
                    Ok(())
                }
                (Some(_), None) => {
                    self.add(ctx, K::AdditionalPropertiesExtended);
                    Ok(())
                }
                (x, y) => self.compare(ctx, x.map(side_a), y.map(side_b)),
            }
        };
        ctx.path.pop();
        outcome?;

        // maxProperties, minProperties
        if let Some(kind) = bound(
            a.max_properties,
            b.max_properties,
            [
                K::MaxPropertiesAdded,
                K::MaxPropertiesRemoved,
                K::MaxPropertiesIncreased,
                K::MaxPropertiesDecreased,
            ],
        ) {
            self.add_at(ctx, "maxProperties", kind);
        }
        if let Some(kind) = bound(
            a.min_properties,
            b.min_properties,
            [
                K::MinPropertiesAdded,
                K::MinPropertiesRemoved,
                K::MinPropertiesIncreased,
                K::MinPropertiesDecreased,
            ],
        ) {
            self.add_at(ctx, "minProperties", kind);
        }
        Ok(())
    }

    /// `ObjectSchemaDiff.compareProperties`, under `properties`.
    fn properties(
        &mut self,
        ctx: &mut Ctx,
        (a_model, a): (usize, &ObjectKind),
        (b_model, b): (usize, &ObjectKind),
    ) -> Result<(), OverBudget> {
        let side_a = |id: NodeId| Side { model: a_model, id };
        let side_b = |id: NodeId| Side { model: b_model, id };
        let mut names: Vec<&String> = a.properties.iter().map(|(k, _)| k).collect();
        let known: HashSet<&String> = names.iter().copied().collect();
        names.extend(
            b.properties
                .iter()
                .map(|(k, _)| k)
                .filter(|k| !known.contains(k)),
        );
        for name in names {
            ctx.path.push(name.clone());
            let outcome = self.property(ctx, name, (side_a, a), (side_b, b));
            ctx.path.pop();
            outcome?;
        }
        Ok(())
    }

    fn property(
        &mut self,
        ctx: &mut Ctx,
        name: &str,
        (side_a, a): (impl Fn(NodeId) -> Side, &ObjectKind),
        (side_b, b): (impl Fn(NodeId) -> Side, &ObjectKind),
    ) -> Result<(), OverBudget> {
        use DifferenceKind as K;
        match (a.property(name), b.property(name)) {
            (Some(before), None) => {
                // Only the update's content model matters: a property can go only from an
                // open one.
                if open_object(b) {
                    self.add(ctx, K::PropertyRemovedFromOpenContentModel);
                } else if let Some(partial) = self.partial_object(b, name)? {
                    let mut sub = ctx.sub();
                    self.compare(&mut sub, Some(side_a(before)), Some(side_b(partial)))?;
                    self.append(ctx, &sub)?;
                    self.add(
                        ctx,
                        if sub.diffs.is_compatible() {
                            K::PropertyRemovedIsCoveredByPartiallyOpenContentModel
                        } else {
                            K::PropertyRemovedNotCoveredByPartiallyOpenContentModel
                        },
                    );
                } else if matches!(self.kind(side_a(before)), Kind::False) {
                    self.add(ctx, K::PropertyWithFalseRemovedFromClosedContentModel);
                } else {
                    self.add(ctx, K::PropertyRemovedFromClosedContentModel);
                }
            }
            (None, Some(after)) => {
                // Only the original's content model matters: a property can be added only to a
                // closed one.
                if open_object(a) {
                    if matches!(self.kind(side_b(after)), Kind::True | Kind::Empty) {
                        self.add(ctx, K::PropertyWithEmptySchemaAddedToOpenContentModel);
                    } else {
                        self.add(ctx, K::PropertyAddedToOpenContentModel);
                    }
                } else {
                    if let Some(partial) = self.partial_object(a, name)? {
                        let mut sub = ctx.sub();
                        self.compare(&mut sub, Some(side_a(partial)), Some(side_b(after)))?;
                        self.append(ctx, &sub)?;
                        self.add(
                            ctx,
                            if sub.diffs.is_compatible() {
                                K::PropertyAddedIsCoveredByPartiallyOpenContentModel
                            } else {
                                K::PropertyAddedNotCoveredByPartiallyOpenContentModel
                            },
                        );
                    }
                    if b.required.iter().any(|r| r == name) {
                        if self.node(side_b(after)).common.default.is_some() {
                            self.add(ctx, K::RequiredPropertyWithDefaultAddedToUnopenContentModel);
                        } else {
                            self.add(ctx, K::RequiredPropertyAddedToUnopenContentModel);
                        }
                    } else {
                        self.add(ctx, K::OptionalPropertyAddedToUnopenContentModel);
                    }
                }
            }
            (Some(before), Some(after)) => {
                self.compare(ctx, Some(side_a(before)), Some(side_b(after)))?;
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// The schema a partially open object gives a property name: the first pattern property
    /// whose pattern matches it (anywhere), else the schema of additional properties.
    fn partial_object(
        &mut self,
        object: &ObjectKind,
        name: &str,
    ) -> Result<Option<NodeId>, OverBudget> {
        for (pattern, id) in &object.pattern_properties {
            if self.matches(pattern, name)? {
                return Ok(Some(*id));
            }
        }
        Ok(object.additional)
    }

    fn matches(&mut self, pattern: &str, name: &str) -> Result<bool, OverBudget> {
        let steps = u64::try_from(pattern.len().saturating_add(name.len()) / 16)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        self.work.take(steps)?;
        let regex = self.patterns.entry(pattern.to_owned()).or_insert_with(|| {
            fancy_regex::RegexBuilder::new(pattern)
                .backtrack_limit(100_000)
                .build()
                .ok()
        });
        Ok(regex
            .as_ref()
            .is_some_and(|regex| regex.is_match(name).unwrap_or(false)))
    }

    /// `ArraySchemaDiff`.
    fn arrays(
        &mut self,
        ctx: &mut Ctx,
        (a_model, a): (usize, &ArrayKind),
        (b_model, b): (usize, &ArrayKind),
    ) -> Result<(), OverBudget> {
        use DifferenceKind as K;
        let side_a = |id: NodeId| Side { model: a_model, id };
        let side_b = |id: NodeId| Side { model: b_model, id };

        // items (one schema for all)
        ctx.path.push("items".to_owned());
        let outcome = self.compare(ctx, a.all_items.map(side_a), b.all_items.map(side_b));
        ctx.path.pop();
        outcome?;

        // items (a tuple)
        let steps = u64::try_from(a.item_schemas.len().saturating_add(b.item_schemas.len()))
            .unwrap_or(u64::MAX);
        self.work.take(steps)?;
        let longest = a.item_schemas.len().max(b.item_schemas.len());
        for index in 0..longest {
            ctx.path.push(format!("items/{index}"));
            let outcome = self.item(
                ctx,
                (a.item_schemas.get(index).copied().map(side_a), a, a_model),
                (b.item_schemas.get(index).copied().map(side_b), b, b_model),
            );
            ctx.path.pop();
            outcome?;
        }

        // additionalItems
        ctx.path.push("additionalItems".to_owned());
        let outcome = if a.permits_additional != b.permits_additional {
            self.add(
                ctx,
                if a.permits_additional {
                    K::AdditionalItemsRemoved
                } else {
                    K::AdditionalItemsAdded
                },
            );
            Ok(())
        } else {
            match (a.additional, b.additional) {
                (None, Some(_)) => {
                    self.add(ctx, K::AdditionalItemsNarrowed);
                    Ok(())
                }
                (Some(_), None) => {
                    self.add(ctx, K::AdditionalItemsExtended);
                    Ok(())
                }
                (x, y) => self.compare(ctx, x.map(side_a), y.map(side_b)),
            }
        };
        ctx.path.pop();
        outcome?;

        // unevaluatedItems
        if a.unevaluated.is_some() || b.unevaluated.is_some() {
            ctx.path.push("unevaluatedItems".to_owned());
            let kinds = (
                a.unevaluated.map(|id| self.kind(side_a(id))),
                b.unevaluated.map(|id| self.kind(side_b(id))),
            );
            let outcome = match kinds {
                (None, Some(Kind::False)) => {
                    self.add(ctx, K::UnevaluatedItemsRemoved);
                    Ok(())
                }
                (None, _) => {
                    self.add(ctx, K::UnevaluatedItemsNarrowed);
                    Ok(())
                }
                (Some(Kind::False), None) => {
                    self.add(ctx, K::UnevaluatedItemsAdded);
                    Ok(())
                }
                (Some(_), None) => {
                    self.add(ctx, K::UnevaluatedItemsExtended);
                    Ok(())
                }
                (Some(Kind::False), Some(y)) if !matches!(y, Kind::False) => {
                    self.add(ctx, K::UnevaluatedItemsAdded);
                    Ok(())
                }
                (Some(x), Some(Kind::False)) if !matches!(x, Kind::False) => {
                    self.add(ctx, K::UnevaluatedItemsRemoved);
                    Ok(())
                }
                (Some(Kind::True | Kind::Empty), Some(y))
                    if !matches!(y, Kind::True | Kind::Empty) =>
                {
                    self.add(ctx, K::UnevaluatedItemsNarrowed);
                    Ok(())
                }
                (Some(x), Some(Kind::True | Kind::Empty))
                    if !matches!(x, Kind::True | Kind::Empty) =>
                {
                    self.add(ctx, K::UnevaluatedItemsExtended);
                    Ok(())
                }
                _ => self.compare(ctx, a.unevaluated.map(side_a), b.unevaluated.map(side_b)),
            };
            ctx.path.pop();
            outcome?;
        }

        // maxItems, minItems, uniqueItems, maxContains, minContains
        if let Some(kind) = bound(
            a.max_items,
            b.max_items,
            [
                K::MaxItemsAdded,
                K::MaxItemsRemoved,
                K::MaxItemsIncreased,
                K::MaxItemsDecreased,
            ],
        ) {
            self.add_at(ctx, "maxItems", kind);
        }
        if let Some(kind) = bound(
            a.min_items,
            b.min_items,
            [
                K::MinItemsAdded,
                K::MinItemsRemoved,
                K::MinItemsIncreased,
                K::MinItemsDecreased,
            ],
        ) {
            self.add_at(ctx, "minItems", kind);
        }
        if a.unique_items != b.unique_items {
            self.add_at(
                ctx,
                "uniqueItems",
                if a.unique_items {
                    K::UniqueItemsRemoved
                } else {
                    K::UniqueItemsAdded
                },
            );
        }
        let whole = |value: Option<f64>| value.map(f64::trunc);
        if let Some(kind) = bound(
            whole(a.max_contains),
            whole(b.max_contains),
            [
                K::MaxContainsAdded,
                K::MaxContainsRemoved,
                K::MaxContainsIncreased,
                K::MaxContainsDecreased,
            ],
        ) {
            self.add_at(ctx, "maxContains", kind);
        }
        if let Some(kind) = bound(
            whole(a.min_contains),
            whole(b.min_contains),
            [
                K::MinContainsAdded,
                K::MinContainsRemoved,
                K::MinContainsIncreased,
                K::MinContainsDecreased,
            ],
        ) {
            self.add_at(ctx, "minContains", kind);
        }
        Ok(())
    }

    /// One position of tuple `items` (`compareItemSchemaArray`).
    fn item(
        &mut self,
        ctx: &mut Ctx,
        (before, a, a_model): (Option<Side>, &ArrayKind, usize),
        (after, b, b_model): (Option<Side>, &ArrayKind, usize),
    ) -> Result<(), OverBudget> {
        use DifferenceKind as K;
        match (before, after) {
            (Some(before), Some(after)) => self.compare(ctx, Some(before), Some(after))?,
            (Some(before), None) => {
                if self.open_array(b_model, b) {
                    self.add(ctx, K::ItemRemovedFromOpenContentModel);
                } else if let Some(partial) = self.partial_array(b_model, b) {
                    let mut sub = ctx.sub();
                    let partial = Side {
                        model: b_model,
                        id: partial,
                    };
                    self.compare(&mut sub, Some(before), Some(partial))?;
                    self.append(ctx, &sub)?;
                    self.add(
                        ctx,
                        if sub.diffs.is_compatible() {
                            K::ItemRemovedIsCoveredByPartiallyOpenContentModel
                        } else {
                            K::ItemRemovedNotCoveredByPartiallyOpenContentModel
                        },
                    );
                } else if matches!(self.kind(before), Kind::False) {
                    self.add(ctx, K::ItemWithFalseRemovedFromClosedContentModel);
                } else {
                    self.add(ctx, K::ItemRemovedFromClosedContentModel);
                }
            }
            (None, Some(after)) => {
                if self.open_array(a_model, a) {
                    if matches!(self.kind(after), Kind::True | Kind::Empty) {
                        self.add(ctx, K::ItemWithEmptySchemaAddedToOpenContentModel);
                    } else {
                        self.add(ctx, K::ItemAddedToOpenContentModel);
                    }
                } else if let Some(partial) = self.partial_array(a_model, a) {
                    let mut sub = ctx.sub();
                    let partial = Side {
                        model: a_model,
                        id: partial,
                    };
                    self.compare(&mut sub, Some(partial), Some(after))?;
                    self.append(ctx, &sub)?;
                    self.add(
                        ctx,
                        if sub.diffs.is_compatible() {
                            K::ItemAddedIsCoveredByPartiallyOpenContentModel
                        } else {
                            K::ItemAddedNotCoveredByPartiallyOpenContentModel
                        },
                    );
                } else {
                    self.add(ctx, K::ItemAddedToClosedContentModel);
                }
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// Fully open: additional items permitted with no schema, and `unevaluatedItems` absent or
    /// the empty schema.
    fn open_array(&self, model: usize, array: &ArrayKind) -> bool {
        if !array.permits_additional || array.additional.is_some() {
            return false;
        }
        array
            .unevaluated
            .is_none_or(|id| matches!(self.kind(Side { model, id }), Kind::True | Kind::Empty))
    }

    /// Partially open: the schema of additional items, or (with no `additionalItems`) an
    /// `unevaluatedItems` schema other than `true`/`{}`/`false`.
    fn partial_array(&self, model: usize, array: &ArrayKind) -> Option<NodeId> {
        if array.additional.is_some() {
            return array.additional;
        }
        if array.permits_additional
            && let Some(id) = array.unevaluated
            && !matches!(
                self.kind(Side { model, id }),
                Kind::True | Kind::Empty | Kind::False
            )
        {
            return Some(id);
        }
        None
    }
}

/// An open content model: no pattern properties, no schema of additional properties, and
/// additional properties permitted.
fn open_object(object: &ObjectKind) -> bool {
    object.pattern_properties.is_empty() && object.additional.is_none() && object.permits_additional
}

/// The kind of change of a bound: `[added, removed, increased, decreased]`.
fn bound(
    before: Option<f64>,
    after: Option<f64>,
    [added, removed, increased, decreased]: [DifferenceKind; 4],
) -> Option<DifferenceKind> {
    match (before, after) {
        (None, None) => None,
        (None, Some(_)) => Some(added),
        (Some(_), None) => Some(removed),
        (Some(x), Some(y)) if x < y => Some(increased),
        (Some(x), Some(y)) if x > y => Some(decreased),
        _ => None,
    }
}

/// A maximum matching of a bipartite graph (left `i` to right `adjacent[i][..]`, `right` right
/// vertices), by augmenting paths found breadth first: for each left vertex, its partner.
fn maximum_matching(adjacent: &[Vec<usize>], right: usize) -> Vec<Option<usize>> {
    let mut left_partner: Vec<Option<usize>> = vec![None; adjacent.len()];
    let mut right_partner: Vec<Option<usize>> = vec![None; right];
    for start in 0..adjacent.len() {
        let mut parent: Vec<Option<usize>> = vec![None; right];
        let mut visited = vec![false; right];
        let mut queue = VecDeque::from([start]);
        let mut free = None;
        'search: while let Some(x) = queue.pop_front() {
            for &r in adjacent.get(x).map(Vec::as_slice).unwrap_or_default() {
                if visited.get(r).copied().unwrap_or(true) {
                    continue;
                }
                if let Some(seen) = visited.get_mut(r) {
                    *seen = true;
                }
                if let Some(slot) = parent.get_mut(r) {
                    *slot = Some(x);
                }
                match right_partner.get(r).copied().flatten() {
                    None => {
                        free = Some(r);
                        break 'search;
                    }
                    Some(next) => queue.push_back(next),
                }
            }
        }
        let mut cursor = free;
        while let Some(r) = cursor {
            let Some(x) = parent.get(r).copied().flatten() else {
                break;
            };
            let previous = left_partner.get(x).copied().flatten();
            if let Some(slot) = right_partner.get_mut(r) {
                *slot = Some(x);
            }
            if let Some(slot) = left_partner.get_mut(x) {
                *slot = Some(r);
            }
            cursor = previous;
        }
    }
    left_partner
}

/// An exact decimal (`multipleOf`): `mantissa × 10^exponent`.
#[derive(Debug, Clone, Copy)]
struct Decimal {
    mantissa: i128,
    exponent: i32,
}

impl Decimal {
    fn parse(number: &serde_json::Number) -> Option<Decimal> {
        let text = number.to_string();
        let (digits, exponent) = match text.find(['e', 'E']) {
            Some(at) => (
                text.get(..at)?,
                text.get(at.saturating_add(1)..)?.parse::<i32>().ok()?,
            ),
            None => (text.as_str(), 0),
        };
        let (negative, digits) = match digits.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, digits),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all = format!("{whole}{fraction}");
        if all.is_empty() || all.len() > 30 || !all.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut mantissa: i128 = all.parse().ok()?;
        if negative {
            mantissa = mantissa.checked_neg()?;
        }
        let exponent = exponent.checked_sub(i32::try_from(fraction.len()).ok()?)?;
        Some(Decimal { mantissa, exponent })
    }

    /// Both mantissas at the smaller exponent, if they fit.
    fn aligned(&self, other: &Decimal) -> Option<(i128, i128)> {
        let exponent = self.exponent.min(other.exponent);
        let scale = |d: &Decimal| -> Option<i128> {
            let shift = u32::try_from(d.exponent.checked_sub(exponent)?).ok()?;
            d.mantissa.checked_mul(10i128.checked_pow(shift)?)
        };
        Some((scale(self)?, scale(other)?))
    }

    fn same(&self, other: &Decimal) -> bool {
        self.aligned(other).is_some_and(|(a, b)| a == b)
    }

    /// Whether `self` is a whole multiple of `other`.
    fn is_multiple_of(&self, other: &Decimal) -> bool {
        match self.aligned(other) {
            Some((_, 0)) | None => false,
            Some((a, b)) => a.checked_rem(b) == Some(0),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn matching_is_maximum() {
        // 0 -> {0, 1}, 1 -> {0}: greedy would pair 0-0 and leave 1 alone.
        let matching = maximum_matching(&[vec![0, 1], vec![0]], 2);
        assert_eq!(matching, vec![Some(1), Some(0)]);
        assert_eq!(maximum_matching(&[vec![], vec![0]], 1), vec![None, Some(0)]);
    }

    #[test]
    fn decimals_are_exact() {
        let d = |text: &str| Decimal::parse(&serde_json::from_str(text).unwrap()).unwrap();
        assert!(d("10").is_multiple_of(&d("0.5")));
        assert!(d("0.3").is_multiple_of(&d("0.1")));
        assert!(!d("0.5").is_multiple_of(&d("10")));
        assert!(d("0.5").same(&d("0.50")));
        assert!(!d("7").is_multiple_of(&d("2")));
    }

    #[test]
    fn every_kind_has_a_unique_name() {
        let mut names = HashSet::new();
        for kind in DifferenceKind::ALL {
            assert!(names.insert(kind.as_str()));
            assert_eq!(DifferenceKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(DifferenceKind::ALL.len(), 132);
    }
}
