//! The PromQL engine: compiles `strata-grammar` ASTs into DataFusion plans over storage's
//! `TableProvider`s, with extension nodes where PromQL semantics need them.
//!
//! Not built yet (issue "PromQL engine on DataFusion"); `engine/DESIGN.md` holds the agreed
//! plan for it. Nothing here is wired into the binary until it evaluates queries.
