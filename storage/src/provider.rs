//! DataFusion TableProviders (todo)
