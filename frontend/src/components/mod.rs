//! Parts of the screen.

pub mod account;
pub mod edge_detail;
pub mod edge_table;
pub mod graph_view;
pub mod maintenance;
pub mod mark_actions;
pub mod nav;
pub mod replay;
pub mod root_causes;
pub mod service_view;
pub mod shell;
